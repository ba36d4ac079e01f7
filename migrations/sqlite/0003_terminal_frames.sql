-- A terminal event's frame is not stored: it would repeat the session's final body, which a
-- terminal state never changes, so it is rendered from sessions.body when read. SQLite cannot
-- drop a NOT NULL constraint in place, so the table is rebuilt.
CREATE TABLE outbox_new (
    tenant     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    frame      TEXT,               -- NULL: a terminal event; the frame is the session's body
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, seq)
) STRICT;
-- Terminal frames already written are dropped in the copy: they equal their session's body.
INSERT INTO outbox_new (tenant, seq, session_id, status, frame, created_at)
    SELECT tenant, seq, session_id, status,
           CASE WHEN status IN ('pending', 'awaiting_user') THEN frame END,
           created_at
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
