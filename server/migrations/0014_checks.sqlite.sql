CREATE TRIGGER verification_records_immutable BEFORE UPDATE ON verification_records
BEGIN
    SELECT RAISE(ABORT, 'verification records cannot be changed');
END
---
CREATE TRIGGER verification_records_kept BEFORE DELETE ON verification_records
BEGIN
    SELECT RAISE(ABORT, 'verification records cannot be deleted');
END
---
CREATE TRIGGER check_items_closed BEFORE UPDATE ON check_items
WHEN OLD.closed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a closed check cannot be changed');
END
---
CREATE TRIGGER check_items_kept BEFORE DELETE ON check_items
BEGIN
    SELECT RAISE(ABORT, 'checks cannot be deleted');
END
---
CREATE TRIGGER regulator_exports_immutable BEFORE UPDATE ON regulator_exports
BEGIN
    SELECT RAISE(ABORT, 'regulator exports cannot be changed');
END
---
CREATE TRIGGER regulator_exports_kept BEFORE DELETE ON regulator_exports
BEGIN
    SELECT RAISE(ABORT, 'regulator exports cannot be deleted');
END
---
CREATE TRIGGER deregistrations_kept BEFORE DELETE ON deregistrations
BEGIN
    SELECT RAISE(ABORT, 'deregistration records cannot be deleted');
END
