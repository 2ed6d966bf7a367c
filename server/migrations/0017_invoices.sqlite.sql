CREATE TRIGGER invoice_lines_within_paid BEFORE INSERT ON invoice_lines
WHEN NEW.amount_fen > 0 AND (
    (SELECT status FROM settlements WHERE id = NEW.settlement_id) IS NOT 'paid'
    OR (SELECT enterprise_id FROM settlements WHERE id = NEW.settlement_id)
        IS NOT (SELECT enterprise_id FROM invoices WHERE id = NEW.invoice_id)
    OR NEW.amount_fen + (
        SELECT COALESCE(SUM(l.amount_fen), 0) FROM invoice_lines l
        JOIN invoices i ON i.id = l.invoice_id
        WHERE l.settlement_id = NEW.settlement_id
          AND ((l.amount_fen > 0 AND i.status <> 'failed')
            OR (l.amount_fen < 0 AND i.status = 'issued'))
    ) > (SELECT gross_fen FROM settlements WHERE id = NEW.settlement_id)
)
BEGIN
    SELECT RAISE(ABORT, 'invoice exceeds what was paid: a line may bill only a paid settlement of the invoice''s enterprise, up to its gross amount');
END
---
CREATE TRIGGER invoice_lines_reverse_only_billed BEFORE INSERT ON invoice_lines
WHEN NEW.amount_fen < 0 AND NEW.amount_fen + (
        SELECT COALESCE(SUM(l.amount_fen), 0) FROM invoice_lines l
        JOIN invoices i ON i.id = l.invoice_id
        WHERE l.settlement_id = NEW.settlement_id
          AND ((l.amount_fen > 0 AND i.status = 'issued')
            OR (l.amount_fen < 0 AND i.status <> 'failed'))
    ) < 0
BEGIN
    SELECT RAISE(ABORT, 'a red-letter line cannot reverse more than was invoiced');
END
---
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE ON invoice_lines
BEGIN
    SELECT RAISE(ABORT, 'invoice lines cannot be changed');
END
---
CREATE TRIGGER invoice_lines_kept BEFORE DELETE ON invoice_lines
BEGIN
    SELECT RAISE(ABORT, 'invoice data is kept forever');
END
---
CREATE TRIGGER invoices_kept BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoice data is kept forever');
END
---
CREATE TRIGGER invoices_fixed BEFORE UPDATE ON invoices
WHEN NEW.enterprise_id IS NOT OLD.enterprise_id OR NEW.kind IS NOT OLD.kind
    OR NEW.reverses_id IS NOT OLD.reverses_id OR NEW.total_fen IS NOT OLD.total_fen
    OR NEW.request_key IS NOT OLD.request_key
    OR (OLD.number IS NOT NULL AND NEW.number IS NOT OLD.number)
    OR OLD.status IN ('issued', 'failed')
BEGIN
    SELECT RAISE(ABORT, 'an invoice''s amount, kind and number cannot change, and an issued or failed invoice is final: correct it with a red-letter invoice');
END
