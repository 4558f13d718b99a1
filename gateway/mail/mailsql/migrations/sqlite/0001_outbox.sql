-- The mail outbox. Times are Unix nanoseconds (0 = none), as in the
-- gateway's own tables, so SQLite and PostgreSQL compare them alike.
CREATE TABLE mail_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    body_text    TEXT    NOT NULL,
    body_html    TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    next_attempt INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt, id);
CREATE INDEX mail_outbox_lease ON mail_outbox (state, lease_until);
