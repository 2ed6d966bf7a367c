-- Who proved they hold each blob by uploading its bytes: a worker can read and use only media
-- they uploaded, however many others uploaded the same bytes.
CREATE TABLE media_uploads (
    hash TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (hash, account_id)
);

-- One order per worker and task.
CREATE UNIQUE INDEX orders_task_worker ON orders (task_id, worker_id);

-- Logins are compared without regard to case.
CREATE UNIQUE INDEX accounts_login_lower ON accounts (LOWER(login));
