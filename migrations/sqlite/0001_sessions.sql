-- Sessions keep their full JSON in `body`; the columns beside it are what queries filter on.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant          TEXT NOT NULL,
    provider        TEXT NOT NULL,
    signer          TEXT NOT NULL,
    status          TEXT NOT NULL,
    reference       TEXT,
    idempotency_key TEXT,
    request_hash    BLOB,
    created_at      INTEGER NOT NULL,   -- unix ms
    expires_at      INTEGER NOT NULL,   -- unix ms
    next_check_at   INTEGER,            -- unix ms; NULL once terminal
    body            TEXT NOT NULL,
    work            TEXT,
    woken           INTEGER NOT NULL DEFAULT 0  -- a callback came while a check was in flight
) STRICT;

CREATE UNIQUE INDEX sessions_idempotency ON sessions (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_due ON sessions (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX sessions_tenant_id ON sessions (tenant, id);
CREATE INDEX sessions_open_signer ON sessions (tenant, signer) WHERE next_check_at IS NOT NULL;

-- The per-tenant event stream. `seq` has no gaps: it is taken from tenant_seq in the same
-- transaction as the state change it describes.
CREATE TABLE outbox (
    tenant     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    frame      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, seq)
) STRICT;

CREATE TABLE tenant_seq (
    tenant   TEXT PRIMARY KEY NOT NULL,
    last_seq INTEGER NOT NULL
) STRICT;
