-- Enterprise applications (standard 5.1.2): licence data, documents stored as sealed media,
-- declared key personnel. Personal fields sealed, ID numbers also as keyed hashes.
CREATE TABLE enterprise_applications (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    upload_token_hash TEXT NOT NULL,
    company_name TEXT NOT NULL,
    credit_code TEXT NOT NULL,
    licence_valid_from TEXT NOT NULL,
    licence_valid_to TEXT,
    business_scope TEXT NOT NULL,
    notice_version TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT,
    account_id TEXT
);
CREATE INDEX enterprise_applications_state ON enterprise_applications (state, deadline_at);

CREATE TABLE enterprise_documents (
    application_id TEXT NOT NULL REFERENCES enterprise_applications(id),
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (application_id, kind)
);

-- Directors, supervisors and senior managers an enterprise declares, for the conflict check
-- of 5.1.1 b: a worker may not work for an enterprise they manage.
CREATE TABLE enterprise_personnel (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES enterprise_applications(id),
    position TEXT NOT NULL,
    name_sealed TEXT NOT NULL,
    id_number_hash TEXT NOT NULL
);
CREATE INDEX enterprise_personnel_id_hash ON enterprise_personnel (id_number_hash);

-- The keyed hash of the ID number of each worker admitted through an application.
ALTER TABLE accounts ADD COLUMN id_number_hash TEXT
