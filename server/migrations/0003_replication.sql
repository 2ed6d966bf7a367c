-- One row per blob and site that must hold a copy other than the one written at upload:
-- copies to the other sites, and repairs of a copy found missing or corrupt.
CREATE TABLE replication_jobs (
    hash TEXT NOT NULL,
    site TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (hash, site)
);
CREATE INDEX replication_jobs_due ON replication_jobs (state, next_attempt_at);
