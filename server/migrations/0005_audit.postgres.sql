CREATE FUNCTION audit_log_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit records cannot be changed';
    END IF;
    IF OLD.at > (EXTRACT(EPOCH FROM now())::BIGINT - 183 * 86400) * 1000 THEN
        RAISE EXCEPTION 'audit records younger than the retention period cannot be deleted';
    END IF;
    RETURN OLD;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_guard()
