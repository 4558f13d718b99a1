-- A message queued with a key is queued once: a sender that retries after
-- a crash finds the message it queued before instead of adding another.
ALTER TABLE mail_outbox ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX mail_outbox_dedupe ON mail_outbox (dedupe_key) WHERE dedupe_key IS NOT NULL;
