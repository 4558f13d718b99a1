-- 0001: applications, sessions, persons, records, things and blobs.
-- {{bytes}} is the dialect's byte-string type. Times are Unix nanoseconds.
CREATE TABLE apps (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE app_certs (
	app_id TEXT NOT NULL REFERENCES apps (id),
	thumbprint TEXT NOT NULL,
	der {{bytes}} NOT NULL,
	added BIGINT NOT NULL,
	PRIMARY KEY (app_id, thumbprint)
);
CREATE TABLE sessions (
	token_hash {{bytes}} PRIMARY KEY,
	app_id TEXT NOT NULL REFERENCES apps (id),
	shared_secret {{bytes}} NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
);
CREATE TABLE persons (
	id TEXT PRIMARY KEY,
	login TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE records (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	name TEXT NOT NULL,
	relationship TEXT NOT NULL,
	created BIGINT NOT NULL
);
CREATE TABLE authorizations (
	app_id TEXT NOT NULL REFERENCES apps (id),
	record_id TEXT NOT NULL REFERENCES records (id),
	granted BIGINT NOT NULL,
	PRIMARY KEY (app_id, record_id)
);
CREATE TABLE blobs (
	id TEXT PRIMARY KEY,
	record_id TEXT NOT NULL REFERENCES records (id),
	app_id TEXT NOT NULL,
	state TEXT NOT NULL,
	block_size BIGINT NOT NULL,
	max_size BIGINT NOT NULL,
	total BIGINT NOT NULL,
	size BIGINT NOT NULL,
	hash {{bytes}},
	created BIGINT NOT NULL,
	completed BIGINT NOT NULL
);
CREATE INDEX blobs_by_created ON blobs (created);
CREATE TABLE blob_blocks (
	blob_id TEXT NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	idx BIGINT NOT NULL,
	length BIGINT NOT NULL,
	hash {{bytes}} NOT NULL,
	PRIMARY KEY (blob_id, idx)
);
CREATE TABLE things (
	record_id TEXT NOT NULL REFERENCES records (id),
	id TEXT NOT NULL,
	version_stamp TEXT NOT NULL,
	type_id TEXT NOT NULL,
	state TEXT NOT NULL,
	flags BIGINT NOT NULL,
	eff_date BIGINT NOT NULL,
	created BIGINT NOT NULL,
	created_app TEXT NOT NULL,
	updated BIGINT NOT NULL,
	updated_app TEXT NOT NULL,
	data_xml {{bytes}} NOT NULL,
	signature_info {{bytes}} NOT NULL,
	tags TEXT NOT NULL,
	PRIMARY KEY (record_id, id)
);
-- No index on type_id: with one next to the primary key, PostgreSQL without
-- fresh statistics may pick it for id lookups and walk the whole record.
CREATE TABLE thing_blobs (
	record_id TEXT NOT NULL,
	thing_id TEXT NOT NULL,
	idx INTEGER NOT NULL,
	name TEXT NOT NULL,
	content_type TEXT NOT NULL,
	blob_id TEXT NOT NULL REFERENCES blobs (id),
	content_length BIGINT NOT NULL,
	hash_info {{bytes}} NOT NULL,
	PRIMARY KEY (record_id, thing_id, idx),
	FOREIGN KEY (record_id, thing_id) REFERENCES things (record_id, id) ON DELETE CASCADE
);
CREATE INDEX thing_blobs_by_blob ON thing_blobs (blob_id);
CREATE TABLE thing_keys (
	record_id TEXT NOT NULL,
	thing_id TEXT NOT NULL,
	path TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (record_id, thing_id, path),
	FOREIGN KEY (record_id, thing_id) REFERENCES things (record_id, id) ON DELETE CASCADE
);
CREATE INDEX thing_keys_by_value ON thing_keys (record_id, path, value);
