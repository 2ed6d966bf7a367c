CREATE FUNCTION statements_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'statements cannot be deleted';
    END IF;
    IF NEW.order_id IS DISTINCT FROM OLD.order_id OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.worker_id IS DISTINCT FROM OLD.worker_id
        OR NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id
        OR NEW.task_id IS DISTINCT FROM OLD.task_id
        OR NEW.period_from IS DISTINCT FROM OLD.period_from
        OR NEW.period_to IS DISTINCT FROM OLD.period_to
        OR NEW.gross_fen IS DISTINCT FROM OLD.gross_fen
        OR NEW.fee_fen IS DISTINCT FROM OLD.fee_fen
        OR NEW.evidence_digest IS DISTINCT FROM OLD.evidence_digest
        OR NEW.reissue_reason IS DISTINCT FROM OLD.reissue_reason
        OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'the amounts and parties of a statement cannot be changed';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER statements_guard BEFORE UPDATE OR DELETE ON statements
FOR EACH ROW EXECUTE FUNCTION statements_guard()
---
CREATE FUNCTION money_record_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows cannot be changed or deleted', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER statement_confirmations_immutable BEFORE UPDATE OR DELETE
ON statement_confirmations FOR EACH ROW EXECUTE FUNCTION money_record_immutable()
---
CREATE TRIGGER deposits_immutable BEFORE UPDATE OR DELETE ON deposits
FOR EACH ROW EXECUTE FUNCTION money_record_immutable()
