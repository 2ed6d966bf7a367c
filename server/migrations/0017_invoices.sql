-- Invoices to enterprises for work that was settled and paid (5.4.5 to 5.4.8).
-- An invoice line bills part or all of one paid settlement. The database refuses any line
-- that would bill a settlement that is not paid, or bill more than its gross amount over all
-- invoices that did not fail (red-letter lines are negative and bring the sum back down).
-- Invoices are never deleted (their data is kept forever), lines never change, and an
-- issued invoice's number, amount and kind never change: corrections are red-letter
-- invoices that reverse the original in full.

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blue', 'red')),
    reverses_id TEXT REFERENCES invoices(id),
    total_fen BIGINT NOT NULL,
    request_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('requested', 'unknown', 'issued', 'failed')),
    number TEXT UNIQUE,
    failure TEXT,
    reason TEXT,
    requested_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    issued_at BIGINT,
    stub_retain_until BIGINT,
    paper_retain_until BIGINT,
    CHECK ((kind = 'blue' AND total_fen > 0 AND reverses_id IS NULL)
        OR (kind = 'red' AND total_fen < 0 AND reverses_id IS NOT NULL))
);
CREATE UNIQUE INDEX invoices_one_reversal ON invoices (reverses_id) WHERE status <> 'failed';
CREATE INDEX invoices_enterprise ON invoices (enterprise_id, created_at);

CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices(id),
    settlement_id TEXT NOT NULL REFERENCES settlements(id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen <> 0),
    PRIMARY KEY (invoice_id, settlement_id)
);
CREATE INDEX invoice_lines_settlement ON invoice_lines (settlement_id)
