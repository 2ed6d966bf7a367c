CREATE TRIGGER archives_no_update BEFORE UPDATE ON archives
BEGIN
    SELECT RAISE(ABORT, 'archive records cannot be changed');
END
---
CREATE TRIGGER archives_keep BEFORE DELETE ON archives
WHEN OLD.retain_until > CAST(strftime('%s', 'now') AS INTEGER) * 1000
BEGIN
    SELECT RAISE(ABORT, 'archived materials cannot be deleted before their retention ends');
END
---
CREATE TRIGGER worker_applications_keep BEFORE DELETE ON worker_applications
WHEN OLD.retain_until IS NULL OR OLD.retain_until > CAST(strftime('%s', 'now') AS INTEGER) * 1000
BEGIN
    SELECT RAISE(ABORT, 'a worker''s materials cannot be deleted before their retention ends');
END
---
CREATE TRIGGER worker_applications_retention_kept BEFORE UPDATE OF retain_until ON worker_applications
WHEN OLD.retain_until IS NOT NULL AND (NEW.retain_until IS NULL OR NEW.retain_until < OLD.retain_until)
BEGIN
    SELECT RAISE(ABORT, 'the retention of a worker''s materials cannot be shortened');
END
