-- Escrow deposits, three-party statements and the settlement's tax month.
-- deposits: money the bank reported arriving in an enterprise's dedicated fund account,
-- recorded once per (enterprise, bank reference), never changed or deleted.
-- statements: what an order's work is worth, confirmed by the platform, the enterprise and
-- the worker before anything is settled. The amounts, parties and evidence digest of a
-- statement never change (triggers below). A correction is a new version, the old one
-- superseded. At most one statement per order is not superseded (partial unique index).
-- statement_confirmations: one row per party and statement, never changed or deleted.

CREATE TABLE deposits (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL REFERENCES accounts(id),
    bank_reference TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    value_date TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (enterprise_id, bank_reference)
);
CREATE INDEX deposits_enterprise ON deposits (enterprise_id, created_at);

CREATE TABLE statements (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    version BIGINT NOT NULL CHECK (version >= 1),
    worker_id TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    period_from BIGINT NOT NULL,
    period_to BIGINT NOT NULL,
    gross_fen BIGINT NOT NULL CHECK (gross_fen >= 0),
    fee_fen BIGINT NOT NULL CHECK (fee_fen >= 0),
    evidence_digest TEXT NOT NULL,
    reissue_reason TEXT,
    status TEXT NOT NULL CHECK (status IN
        ('open', 'awaiting_funds', 'settled', 'disputed', 'superseded', 'void')),
    dispute_reason TEXT,
    disputed_by TEXT,
    disputed_party TEXT,
    resolved_by TEXT,
    resolution_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (order_id, version)
);
CREATE UNIQUE INDEX statements_one_current ON statements (order_id)
    WHERE status <> 'superseded';
CREATE INDEX statements_status ON statements (status, created_at);

CREATE TABLE statement_confirmations (
    statement_id TEXT NOT NULL REFERENCES statements(id),
    party TEXT NOT NULL CHECK (party IN ('platform', 'enterprise', 'worker')),
    account_id TEXT NOT NULL,
    confirmed_at BIGINT NOT NULL,
    PRIMARY KEY (statement_id, party)
);

ALTER TABLE settlements ADD COLUMN statement_id TEXT;
ALTER TABLE settlements ADD COLUMN fee_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN income_month TEXT;
CREATE INDEX settlements_worker_month ON settlements (worker_id, income_month)
