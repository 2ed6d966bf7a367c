-- Face checks with liveness (standard 5.1.4) and resubmitted applications.
--
-- A phone that lost its connection resubmits the same application under the reference it
-- chose: the server answers the first submission again instead of a conflict. The request
-- fingerprint is a keyed hash of the whole request, so a reused reference with other content
-- is recognised without keeping the content.
ALTER TABLE worker_applications ADD COLUMN client_reference TEXT;
ALTER TABLE worker_applications ADD COLUMN request_fingerprint TEXT;
CREATE UNIQUE INDEX worker_applications_client_reference
    ON worker_applications (client_reference);

-- The face image an applicant captured with liveness, stored as a sealed media blob named by
-- its hash (never readable through the media endpoint, only through the audited reveal), and
-- the provider's ticket once the check is pending. The check's result is kept with the other
-- automated checks of the application.
CREATE TABLE face_checks (
    application_id TEXT PRIMARY KEY REFERENCES worker_applications(id),
    image_hash TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    captured_at BIGINT NOT NULL,
    provider TEXT,
    ticket TEXT,
    submitted_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX face_checks_ticket ON face_checks (ticket);
CREATE INDEX face_checks_image ON face_checks (image_hash);

-- Every provider callback applied, by provider and ticket, inserted in the transaction that
-- applies it: a repeated delivery, before or after a restart, is acknowledged and ignored.
CREATE TABLE realname_callbacks (
    provider TEXT NOT NULL,
    ticket TEXT NOT NULL,
    request_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    delivery_attempt BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, ticket)
)
