-- A terminal event's frame is not stored: it would repeat the session's final body, which a
-- terminal state never changes, so it is rendered from sessions.body when read.
ALTER TABLE outbox ALTER COLUMN frame DROP NOT NULL;
