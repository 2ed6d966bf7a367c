CREATE TRIGGER ledger_events_immutable BEFORE UPDATE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger events cannot be changed');
END
---
CREATE TRIGGER ledger_events_kept BEFORE DELETE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger events cannot be deleted');
END
---
CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'ledger postings cannot be changed');
END
---
CREATE TRIGGER ledger_postings_kept BEFORE DELETE ON ledger_postings
BEGIN
    SELECT RAISE(ABORT, 'ledger postings cannot be deleted');
END
