CREATE TRIGGER statements_amounts_fixed BEFORE UPDATE ON statements
WHEN NEW.order_id IS NOT OLD.order_id OR NEW.version IS NOT OLD.version
    OR NEW.worker_id IS NOT OLD.worker_id OR NEW.enterprise_id IS NOT OLD.enterprise_id
    OR NEW.task_id IS NOT OLD.task_id OR NEW.period_from IS NOT OLD.period_from
    OR NEW.period_to IS NOT OLD.period_to OR NEW.gross_fen IS NOT OLD.gross_fen
    OR NEW.fee_fen IS NOT OLD.fee_fen OR NEW.evidence_digest IS NOT OLD.evidence_digest
    OR NEW.reissue_reason IS NOT OLD.reissue_reason OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'the amounts and parties of a statement cannot be changed');
END
---
CREATE TRIGGER statements_kept BEFORE DELETE ON statements
BEGIN
    SELECT RAISE(ABORT, 'statements cannot be deleted');
END
---
CREATE TRIGGER statement_confirmations_fixed BEFORE UPDATE ON statement_confirmations
BEGIN
    SELECT RAISE(ABORT, 'statement confirmations cannot be changed');
END
---
CREATE TRIGGER statement_confirmations_kept BEFORE DELETE ON statement_confirmations
BEGIN
    SELECT RAISE(ABORT, 'statement confirmations cannot be deleted');
END
---
CREATE TRIGGER deposits_fixed BEFORE UPDATE ON deposits
BEGIN
    SELECT RAISE(ABORT, 'deposits cannot be changed');
END
---
CREATE TRIGGER deposits_kept BEFORE DELETE ON deposits
BEGIN
    SELECT RAISE(ABORT, 'deposits cannot be deleted');
END
