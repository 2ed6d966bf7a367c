CREATE FUNCTION ledger_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger (%) cannot be changed or deleted', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER ledger_events_immutable BEFORE UPDATE OR DELETE ON ledger_events
FOR EACH ROW EXECUTE FUNCTION ledger_immutable()
---
CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON ledger_postings
FOR EACH ROW EXECUTE FUNCTION ledger_immutable()
