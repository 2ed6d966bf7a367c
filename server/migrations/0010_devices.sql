-- Device-bound credentials of workers' phones (issue 4). A phone registers a P-256 public
-- key once, with a fresh password sign-in, and signs every later request with it.
-- Revoked devices stay listed, with when and why, so their use can be told apart from an
-- unknown device and shown to the worker.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX devices_by_account ON devices (account_id, registered_at);

-- Nonces of accepted signed requests, kept while a request with the same timestamp could
-- still be accepted, so a replay is refused also after a restart.
CREATE TABLE device_nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    request_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX device_nonces_by_time ON device_nonces (request_at)
