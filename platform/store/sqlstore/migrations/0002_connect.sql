-- 0002: DOPU packages and their streamed blobs, Patient Connect requests,
-- identity codes, patient web sessions and the patient-side audit trail.
-- Packages hold ciphertext only, connect requests an argon2id answer hash.
CREATE TABLE identity_codes (
	code TEXT PRIMARY KEY,
	created BIGINT NOT NULL
);
CREATE TABLE connect_packages (
	code TEXT PRIMARY KEY REFERENCES identity_codes (code),
	app_id TEXT NOT NULL REFERENCES apps (id),
	external_id TEXT NOT NULL,
	friendly_name TEXT NOT NULL,
	question TEXT NOT NULL,
	state TEXT NOT NULL,
	data_xml {{bytes}} NOT NULL,
	ciphertext {{bytes}} NOT NULL,
	wrong_answers INTEGER NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	claimed_until BIGINT NOT NULL,
	picked_up BIGINT NOT NULL,
	record_id TEXT NOT NULL
);
CREATE INDEX connect_packages_by_external_id ON connect_packages (app_id, external_id);
CREATE INDEX connect_packages_by_expiry ON connect_packages (expires);
CREATE TABLE package_blobs (
	id TEXT PRIMARY KEY,
	app_id TEXT NOT NULL REFERENCES apps (id),
	state TEXT NOT NULL,
	pre_chunk_size BIGINT NOT NULL,
	post_chunk_size BIGINT NOT NULL,
	max_size BIGINT NOT NULL,
	total BIGINT NOT NULL,
	size BIGINT NOT NULL,
	code TEXT NOT NULL,
	idx INTEGER NOT NULL,
	created BIGINT NOT NULL,
	completed BIGINT NOT NULL
);
CREATE INDEX package_blobs_by_code ON package_blobs (code);
CREATE TABLE package_blob_blocks (
	blob_id TEXT NOT NULL REFERENCES package_blobs (id) ON DELETE CASCADE,
	idx BIGINT NOT NULL,
	length BIGINT NOT NULL,
	hash {{bytes}} NOT NULL,
	PRIMARY KEY (blob_id, idx)
);
CREATE TABLE connect_requests (
	code TEXT PRIMARY KEY REFERENCES identity_codes (code),
	app_id TEXT NOT NULL REFERENCES apps (id),
	external_id TEXT NOT NULL,
	friendly_name TEXT NOT NULL,
	question TEXT NOT NULL,
	answer_hash TEXT NOT NULL,
	callback_url TEXT NOT NULL,
	state TEXT NOT NULL,
	wrong_answers INTEGER NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	person_id TEXT NOT NULL,
	record_id TEXT NOT NULL,
	authorized BIGINT NOT NULL
);
-- One pending request per external id per application.
CREATE UNIQUE INDEX connect_requests_one_pending ON connect_requests (app_id, external_id) WHERE state = 'pending';
CREATE INDEX connect_requests_by_authorized ON connect_requests (app_id, authorized);
CREATE TABLE app_messages (
	app_id TEXT PRIMARY KEY REFERENCES apps (id),
	success_message TEXT NOT NULL
);
CREATE TABLE patient_audit (
	at BIGINT NOT NULL,
	action TEXT NOT NULL,
	person_id TEXT NOT NULL,
	record_id TEXT NOT NULL,
	app_id TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX patient_audit_by_person ON patient_audit (person_id, at);
CREATE TABLE web_sessions (
	token_hash {{bytes}} PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	csrf TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
)
