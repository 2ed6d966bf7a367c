CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit records cannot be changed');
END
---
CREATE TRIGGER audit_log_keep BEFORE DELETE ON audit_log
WHEN OLD.at > (CAST(strftime('%s', 'now') AS INTEGER) - 183 * 86400) * 1000
BEGIN
    SELECT RAISE(ABORT, 'audit records younger than the retention period cannot be deleted');
END
