-- The task lifecycle (standard 4.2.2, 4.2.3, 5.3, 5.5.4): a task is drafted, submitted,
-- reviewed by an operator and published before workers take it.
-- status is one of draft, submitted, published, refused, closed, cancelled, void.
-- Tasks created before this migration were published at once, so they stay published.
-- Lists (skills, qualifications, health requirements) are JSON arrays of strings, and NULL
-- means the enterprise has not said yet (an empty array means none needed).

ALTER TABLE tasks ADD COLUMN status TEXT NOT NULL DEFAULT 'published';
ALTER TABLE tasks ADD COLUMN status_reason TEXT;
ALTER TABLE tasks ADD COLUMN status_changed_at BIGINT;
ALTER TABLE tasks ADD COLUMN skills TEXT;
ALTER TABLE tasks ADD COLUMN qualifications TEXT;
ALTER TABLE tasks ADD COLUMN health_requirements TEXT;
ALTER TABLE tasks ADD COLUMN hardware TEXT;
ALTER TABLE tasks ADD COLUMN acceptance_criteria TEXT;
ALTER TABLE tasks ADD COLUMN fee_basis TEXT;
ALTER TABLE tasks ADD COLUMN min_fee_fen BIGINT;
ALTER TABLE tasks ADD COLUMN min_service_minutes BIGINT;
ALTER TABLE tasks ADD COLUMN max_minutes_per_day BIGINT;
ALTER TABLE tasks ADD COLUMN min_rest_minutes BIGINT;
ALTER TABLE tasks ADD COLUMN headcount BIGINT;
ALTER TABLE tasks ADD COLUMN estimated_minutes_per_person BIGINT;
CREATE INDEX tasks_status ON tasks (status, created_at);

-- One row per operator decision on a submitted task, with the authenticity checks the
-- reviewer made (JSON array of kind, note and evidence hashes) and the automated capacity
-- warnings shown at the time (JSON array).
CREATE TABLE task_reviews (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    reviewer_id TEXT NOT NULL REFERENCES accounts(id),
    decision TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT NOT NULL,
    checks TEXT NOT NULL,
    warnings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX task_reviews_task ON task_reviews (task_id, created_at);

-- What a worker declared about themself when applying: checked against task requirements,
-- also when an enterprise assigns them directly.
CREATE TABLE worker_declarations (
    worker_id TEXT PRIMARY KEY REFERENCES accounts(id),
    skills TEXT NOT NULL,
    qualifications TEXT NOT NULL,
    health_attested BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A worker's application to a published task: pending until accepted (an order is formed).
CREATE TABLE task_applications (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    worker_id TEXT NOT NULL REFERENCES accounts(id),
    skills TEXT NOT NULL,
    qualifications TEXT NOT NULL,
    health_attested BIGINT NOT NULL,
    status TEXT NOT NULL,
    order_id TEXT,
    decided_by TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    UNIQUE (task_id, worker_id)
);

-- Orders cancelled before the worker submitted evidence.
ALTER TABLE orders ADD COLUMN cancelled_at BIGINT;
ALTER TABLE orders ADD COLUMN cancel_reason TEXT;
ALTER TABLE orders ADD COLUMN cancelled_by TEXT
