-- The admin UI's users, their server-side sessions, the one-time setup
-- tokens that create the first admin, and the audit log.
-- {{id}} and {{bytes}} are the flavor's auto-increment key and byte-string types.
CREATE TABLE gw_admin_users (
    id {{id}} PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- id is a digest of the session cookie, never the cookie itself: a copy
-- of the database does not let anyone take over a session.
CREATE TABLE gw_admin_sessions (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES gw_admin_users (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX gw_admin_sessions_expiry ON gw_admin_sessions (expires_at);
CREATE INDEX gw_admin_sessions_user ON gw_admin_sessions (user_id);

CREATE TABLE gw_admin_setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE gw_admin_audit (
    id {{id}} PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id BIGINT NOT NULL DEFAULT 0,
    username TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    study_uid TEXT NOT NULL DEFAULT '',
    patient_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX gw_admin_audit_at ON gw_admin_audit (at);
CREATE INDEX gw_admin_audit_study ON gw_admin_audit (study_uid, id);
