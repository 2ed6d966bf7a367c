-- Worker applications (standard 5.1.1, 5.1.3 to 5.1.5). Personal fields are stored sealed by
-- the master key, with keyed hashes where equal values must be found.
CREATE TABLE worker_applications (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    name_sealed TEXT NOT NULL,
    id_number_sealed TEXT NOT NULL,
    id_number_hash TEXT NOT NULL,
    bank_card_sealed TEXT NOT NULL,
    phone_sealed TEXT NOT NULL,
    trade TEXT NOT NULL,
    declarations TEXT NOT NULL,
    signature TEXT NOT NULL,
    notice_version TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    automated TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT,
    account_id TEXT
);
CREATE INDEX worker_applications_state ON worker_applications (state, deadline_at);
CREATE INDEX worker_applications_id_hash ON worker_applications (id_number_hash);

-- Consent to a version of the privacy notice, per subject (an application or an account).
CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    notice_version TEXT NOT NULL,
    given_at BIGINT NOT NULL,
    address TEXT
)
