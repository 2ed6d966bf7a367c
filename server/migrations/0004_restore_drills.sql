-- Every restore drill: which site was restored, how much, how long, what failed.
CREATE TABLE restore_drills (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    objects BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    report_path TEXT NOT NULL
);
