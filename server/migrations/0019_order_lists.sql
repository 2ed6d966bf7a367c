-- Order lists that scale: what each evidence document holds, counted when the document is
-- saved (in the same transaction), so a list of orders need not load the documents.
-- Documents saved before this migration have NULL counts: the first list that meets one
-- counts it from the document once and stores the counts (the migration cannot read
-- Automerge bytes).

ALTER TABLE evidence_docs ADD COLUMN photos BIGINT;
ALTER TABLE evidence_docs ADD COLUMN track_points BIGINT;
ALTER TABLE evidence_docs ADD COLUMN signatures BIGINT;
ALTER TABLE evidence_docs ADD COLUMN notes BIGINT;

-- Pages walk orders by (created_at, id).
DROP INDEX orders_by_created;
CREATE INDEX orders_by_created ON orders (created_at, id);
CREATE INDEX orders_by_enterprise ON orders (enterprise_id, created_at, id);
CREATE INDEX orders_by_worker ON orders (worker_id, created_at, id);
