-- {{id}} and {{bytes}} are the flavor's auto-increment key and byte-string types.
CREATE TABLE gw_studies (
    study_uid TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    issuer TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '',
    referring TEXT NOT NULL DEFAULT '',
    modalities TEXT NOT NULL DEFAULT '',
    calling_ae TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    route TEXT NOT NULL DEFAULT '',
    route_reason TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    instances INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    blobs_done INTEGER NOT NULL DEFAULT 0,
    blobs_total INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_received BIGINT NOT NULL DEFAULT 0,
    last_received BIGINT NOT NULL DEFAULT 0,
    ready_at BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL DEFAULT 0,
    thing_id TEXT NOT NULL DEFAULT '',
    version_stamp TEXT NOT NULL DEFAULT '',
    person_id TEXT NOT NULL DEFAULT '',
    record_id TEXT NOT NULL DEFAULT '',
    package_code TEXT NOT NULL DEFAULT '',
    pickup_id BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX gw_studies_state ON gw_studies (state, ready_at);
CREATE INDEX gw_studies_recent ON gw_studies (last_received);
CREATE INDEX gw_studies_patient ON gw_studies (patient_id, issuer);

CREATE TABLE gw_instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL REFERENCES gw_studies (study_uid),
    series_uid TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    calling_ae TEXT NOT NULL DEFAULT '',
    peer_addr TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL,
    facts TEXT NOT NULL DEFAULT '',
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX gw_instances_study ON gw_instances (study_uid, received_at);

CREATE TABLE gw_jobs (
    id {{id}} PRIMARY KEY,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX gw_jobs_due ON gw_jobs (state, run_at);
CREATE INDEX gw_jobs_key ON gw_jobs (job_key);

CREATE TABLE gw_events (
    id {{id}} PRIMARY KEY,
    study_uid TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX gw_events_study ON gw_events (study_uid, id);

CREATE TABLE gw_blobs (
    study_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    ref_url TEXT NOT NULL,
    hash TEXT NOT NULL,
    block_size BIGINT NOT NULL,
    content_length BIGINT NOT NULL,
    PRIMARY KEY (study_uid, name)
);

CREATE TABLE gw_pickups (
    id {{id}} PRIMARY KEY,
    patient_id TEXT NOT NULL,
    issuer TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    question TEXT NOT NULL,
    answer_sealed {{bytes}},
    identity_code TEXT NOT NULL DEFAULT '',
    study_uid TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX gw_pickups_patient ON gw_pickups (patient_id, issuer, state);

CREATE TABLE gw_links (
    external_id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    authorized_at BIGINT NOT NULL
);

CREATE TABLE gw_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
