-- The double-entry ledger, in integer fen.
-- An event (a deposit, a settlement, a payout...) posts two or more lines whose amounts sum
-- to zero: debits positive, credits negative. Events and postings are never changed or
-- deleted (triggers below), and each event is posted at most once for its idempotency key.
-- ledger_accounts keeps each account's running balance on its normal side so that a CHECK
-- refuses any posting that would take a must-not-be-negative account below zero, in the same
-- transaction, on both backends. The running balance is checked against the sum of the
-- postings by `flexwork ledger check` and by the tests.

CREATE TABLE ledger_accounts (
    account TEXT PRIMARY KEY,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    may_go_negative BIGINT NOT NULL DEFAULT 0,
    balance_fen BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CHECK (may_go_negative = 1 OR balance_fen >= 0)
);

CREATE TABLE ledger_events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    object_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_events_object ON ledger_events (object_id);

CREATE TABLE ledger_postings (
    event_id TEXT NOT NULL REFERENCES ledger_events(id),
    line BIGINT NOT NULL,
    account TEXT NOT NULL REFERENCES ledger_accounts(account),
    amount_fen BIGINT NOT NULL CHECK (amount_fen <> 0),
    PRIMARY KEY (event_id, line)
);
CREATE INDEX ledger_postings_account ON ledger_postings (account)
