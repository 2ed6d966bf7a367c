CREATE FUNCTION checks_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows cannot be changed or deleted', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER verification_records_immutable BEFORE UPDATE OR DELETE ON verification_records
FOR EACH ROW EXECUTE FUNCTION checks_refuse_change()
---
CREATE TRIGGER regulator_exports_immutable BEFORE UPDATE OR DELETE ON regulator_exports
FOR EACH ROW EXECUTE FUNCTION checks_refuse_change()
---
CREATE TRIGGER deregistrations_kept BEFORE DELETE ON deregistrations
FOR EACH ROW EXECUTE FUNCTION checks_refuse_change()
---
CREATE FUNCTION check_items_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'checks cannot be deleted';
    END IF;
    IF OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'a closed check cannot be changed';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER check_items_guard BEFORE UPDATE OR DELETE ON check_items
FOR EACH ROW EXECUTE FUNCTION check_items_guard()
