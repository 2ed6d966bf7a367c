CREATE FUNCTION archives_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'archive records cannot be changed';
    END IF;
    IF OLD.retain_until > EXTRACT(EPOCH FROM now())::BIGINT * 1000 THEN
        RAISE EXCEPTION 'archived materials cannot be deleted before their retention ends';
    END IF;
    RETURN OLD;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER archives_guard BEFORE UPDATE OR DELETE ON archives
FOR EACH ROW EXECUTE FUNCTION archives_guard()
---
CREATE FUNCTION worker_applications_keep() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.retain_until IS NOT NULL
            AND (NEW.retain_until IS NULL OR NEW.retain_until < OLD.retain_until) THEN
            RAISE EXCEPTION 'the retention of a worker''s materials cannot be shortened';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.retain_until IS NULL OR OLD.retain_until > EXTRACT(EPOCH FROM now())::BIGINT * 1000 THEN
        RAISE EXCEPTION 'a worker''s materials cannot be deleted before their retention ends';
    END IF;
    RETURN OLD;
END
$$ LANGUAGE plpgsql
---
CREATE TRIGGER worker_applications_keep BEFORE UPDATE OR DELETE ON worker_applications
FOR EACH ROW EXECUTE FUNCTION worker_applications_keep()
