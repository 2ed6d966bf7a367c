-- Archived materials (standard 7.2.1): one sealed, content-addressed object per archive,
-- stored and copied like media, with the row that finds it. Rows are never changed, and
-- neither a row nor a worker's application can be deleted before retain_until.
CREATE TABLE archives (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    retain_until BIGINT NOT NULL
);
CREATE INDEX archives_subject ON archives (subject, created_at);

ALTER TABLE worker_applications ADD COLUMN retain_until BIGINT
