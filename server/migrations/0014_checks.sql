-- Authenticity checks (standard 5.2), regulator reporting (5.4.7) and deregistration (5.6).

-- One row per Asia/Shanghai date the daily sample was drawn: a second run on the same date,
-- also after a restart, finds it and draws nothing.
CREATE TABLE check_runs (
    run_date TEXT PRIMARY KEY,
    ran_at BIGINT NOT NULL,
    seed BIGINT NOT NULL,
    enterprises BIGINT NOT NULL,
    workers BIGINT NOT NULL,
    orders BIGINT NOT NULL
);

-- Work items of the checks: the enterprise risk sample, the quarterly full screening, and
-- the worker and order samples for call-back or survey. Closed items cannot change.
CREATE TABLE check_items (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    period TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    closed_by TEXT,
    outcome TEXT,
    kind TEXT,
    notes TEXT,
    dimensions TEXT,
    attachments TEXT
);
CREATE UNIQUE INDEX check_items_once ON check_items (queue, subject_id, period);
CREATE INDEX check_items_open ON check_items (queue, closed_at, created_at);

-- Results of call-backs, surveys and visits, kept as verification evidence of the order or
-- worker they are about: never changed, never deleted.
CREATE TABLE verification_records (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    notes TEXT NOT NULL,
    attachments TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX verification_records_subject ON verification_records (subject_kind, subject_id);

-- Attachments of checks (recordings, photos): sealed blobs in the media store.
CREATE TABLE check_attachments (
    item_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (item_id, hash)
);

-- Exports handed to the regulator: one file per export in the outbox folder.
CREATE TABLE regulator_exports (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    version BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    records BIGINT NOT NULL,
    sealed_hash TEXT,
    adapter TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX regulator_exports_version ON regulator_exports (kind, period, version);

-- Deregistration requests: one open request per account at a time.
CREATE TABLE deregistrations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    reason TEXT,
    authority_reference TEXT,
    due_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL,
    overdue_at BIGINT,
    closed_at BIGINT,
    voided_tasks BIGINT
);
CREATE INDEX deregistrations_account ON deregistrations (account_id, requested_at);
CREATE INDEX deregistrations_state ON deregistrations (state, due_at);

-- Messages to account holders. There is no SMS or e-mail service: a row here is the message,
-- shown to the holder and handed to such a service once one is wired.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
