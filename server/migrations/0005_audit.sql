-- Security audit trail (standard 6.1 a): who did what to which object, when, with what result.
-- Rows are only ever inserted: the triggers of the backend-specific part refuse every change
-- and every deletion of a row younger than the retention period.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    object TEXT,
    result TEXT NOT NULL,
    detail TEXT,
    address TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);

-- Failed sign-ins, per account and per address, for throttling.
CREATE TABLE login_failures (
    id TEXT PRIMARY KEY,
    login_key TEXT NOT NULL,
    address TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_login ON login_failures (login_key, at);
CREATE INDEX login_failures_address ON login_failures (address, at);

-- Two-factor login: the account's TOTP secret (sealed), the last time step accepted (a code
-- is never accepted twice), and hashed one-time recovery codes
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- What a token may do: 'full', or 'enroll' (only set up two-factor login).
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'
