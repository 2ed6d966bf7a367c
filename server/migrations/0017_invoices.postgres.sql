CREATE FUNCTION invoice_lines_guard() RETURNS trigger AS $$
DECLARE
    paid RECORD;
    billed BIGINT;
    buyer TEXT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'invoice lines cannot be changed, and invoice data is kept forever';
    END IF;
    SELECT status, enterprise_id, gross_fen INTO paid FROM settlements
        WHERE id = NEW.settlement_id FOR UPDATE;
    -- A new bill counts every bill not failed, and only reversals issued. A reversal
    -- counts only bills issued, and every reversal not failed.
    SELECT COALESCE(SUM(l.amount_fen), 0) INTO billed FROM invoice_lines l
        JOIN invoices i ON i.id = l.invoice_id
        WHERE l.settlement_id = NEW.settlement_id
          AND ((l.amount_fen > 0 AND i.status <> 'failed' AND NEW.amount_fen > 0)
            OR (l.amount_fen > 0 AND i.status = 'issued' AND NEW.amount_fen < 0)
            OR (l.amount_fen < 0 AND i.status = 'issued' AND NEW.amount_fen > 0)
            OR (l.amount_fen < 0 AND i.status <> 'failed' AND NEW.amount_fen < 0));
    IF NEW.amount_fen > 0 THEN
        SELECT enterprise_id INTO buyer FROM invoices WHERE id = NEW.invoice_id;
        IF paid.status IS DISTINCT FROM 'paid' OR paid.enterprise_id IS DISTINCT FROM buyer
            OR billed + NEW.amount_fen > paid.gross_fen THEN
            RAISE EXCEPTION 'invoice exceeds what was paid: a line may bill only a paid settlement of the invoice''s enterprise, up to its gross amount';
        END IF;
    ELSIF billed + NEW.amount_fen < 0 THEN
        RAISE EXCEPTION 'a red-letter line cannot reverse more than was invoiced';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER invoice_lines_guard BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
FOR EACH ROW EXECUTE FUNCTION invoice_lines_guard()
---
CREATE FUNCTION invoices_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice data is kept forever';
    END IF;
    IF NEW.enterprise_id IS DISTINCT FROM OLD.enterprise_id OR NEW.kind IS DISTINCT FROM OLD.kind
        OR NEW.reverses_id IS DISTINCT FROM OLD.reverses_id
        OR NEW.total_fen IS DISTINCT FROM OLD.total_fen
        OR NEW.request_key IS DISTINCT FROM OLD.request_key
        OR (OLD.number IS NOT NULL AND NEW.number IS DISTINCT FROM OLD.number)
        OR OLD.status IN ('issued', 'failed') THEN
        RAISE EXCEPTION 'an invoice''s amount, kind and number cannot change, and an issued or failed invoice is final: correct it with a red-letter invoice';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER invoices_guard BEFORE UPDATE OR DELETE ON invoices
FOR EACH ROW EXECUTE FUNCTION invoices_guard()
