-- The web console: browser sessions held in a cookie, and every operator decision on an
-- order's evidence kept as history (the order row holds only the latest one).
-- A cookie session (cookie = 1) ends after `[console] session_idle_minutes` without a
-- request, counted from last_seen_at, the time of its last request.

ALTER TABLE api_tokens ADD COLUMN cookie BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN last_seen_at BIGINT;

-- decision is approved, rejected or has_issues, and items (has_issues only) a JSON list of
-- {item, comment}. Rows are never changed or deleted.
CREATE TABLE order_decisions (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'has_issues')),
    reason TEXT NOT NULL,
    items TEXT NOT NULL DEFAULT '[]',
    operator_id TEXT NOT NULL REFERENCES accounts(id),
    verdict TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);
CREATE INDEX order_decisions_by_order ON order_decisions (order_id, decided_at);
CREATE INDEX orders_by_created ON orders (created_at);
