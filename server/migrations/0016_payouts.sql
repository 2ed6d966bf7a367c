-- Payout cycles, payouts through the payment provider, and the callbacks it sent.
-- A payout carries one worker's settlements of one period. Its idempotency key
-- payout:{worker}:{period}:{attempt} is what the provider deduplicates on, unique here.

CREATE TABLE payout_preferences (
    worker_id TEXT PRIMARY KEY REFERENCES accounts(id),
    cycle TEXT NOT NULL CHECK (cycle IN ('day', 'week', 'month')),
    updated_at BIGINT NOT NULL
);

CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    period TEXT NOT NULL,
    attempt BIGINT NOT NULL CHECK (attempt >= 1),
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    status TEXT NOT NULL
        CHECK (status IN ('created', 'sending', 'processing', 'unknown', 'paid', 'failed')),
    provider TEXT NOT NULL,
    provider_ref TEXT,
    failure_code TEXT,
    failure_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    completed_at BIGINT,
    UNIQUE (worker_id, period, attempt)
);

CREATE INDEX payouts_by_status ON payouts (status, updated_at);
CREATE INDEX payouts_by_worker ON payouts (worker_id, created_at);

-- Which settlements a payout carried, kept when a failed payout hands them back.
CREATE TABLE payout_items (
    payout_id TEXT NOT NULL REFERENCES payouts(id),
    settlement_id TEXT NOT NULL REFERENCES settlements(id),
    net_fen BIGINT NOT NULL,
    PRIMARY KEY (payout_id, settlement_id)
);

-- Provider callbacks applied, one row per callback id: a repeat delivery finds its row.
CREATE TABLE payout_callbacks (
    provider TEXT NOT NULL,
    callback_id TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, callback_id)
);

ALTER TABLE settlements ADD COLUMN payout_id TEXT;

CREATE INDEX settlements_by_status ON settlements (status, worker_id);
CREATE INDEX settlements_by_payout ON settlements (payout_id)
