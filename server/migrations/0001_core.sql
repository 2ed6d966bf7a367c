-- Accounts, tokens, tasks, orders, evidence documents, media and settlements.
-- Written once for both backends: {BLOB} and {REAL} are replaced per backend.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL REFERENCES accounts(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    site_lat {REAL} NOT NULL,
    site_lon {REAL} NOT NULL,
    site_radius_m {REAL} NOT NULL,
    window_from BIGINT NOT NULL,
    window_to BIGINT NOT NULL,
    fee_fen BIGINT NOT NULL,
    min_photos BIGINT NOT NULL,
    require_track BIGINT NOT NULL,
    require_signature BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    worker_id TEXT NOT NULL REFERENCES accounts(id),
    enterprise_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    submitted_at BIGINT,
    verdict TEXT,
    report TEXT,
    verified_at BIGINT,
    needs_verification BIGINT NOT NULL DEFAULT 0,
    operator_decision TEXT,
    operator_reason TEXT,
    operator_id TEXT,
    decided_at BIGINT,
    confirmation TEXT,
    confirmation_reason TEXT,
    confirmed_at BIGINT
);
CREATE INDEX orders_worker ON orders (worker_id);
CREATE INDEX orders_enterprise ON orders (enterprise_id);

CREATE TABLE evidence_docs (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    doc {BLOB} NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE doc_sync_states (
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    state {BLOB} NOT NULL,
    PRIMARY KEY (account_id, device_id, order_id)
);

CREATE TABLE evidence_photos (
    order_id TEXT NOT NULL REFERENCES orders(id),
    photo_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    dhash BIGINT,
    PRIMARY KEY (order_id, photo_id)
);
CREATE INDEX evidence_photos_hash ON evidence_photos (hash);

CREATE TABLE media_objects (
    hash TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE settlements (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE REFERENCES orders(id),
    worker_id TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    gross_fen BIGINT NOT NULL,
    tax_fen BIGINT NOT NULL,
    net_fen BIGINT NOT NULL,
    tax_method TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
