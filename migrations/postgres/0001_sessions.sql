-- Sessions keep their full JSON in `body`; the columns beside it are what queries filter on.
-- Times are unix milliseconds, as in the SQLite schema.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    provider        TEXT NOT NULL,
    signer          TEXT NOT NULL,
    status          TEXT NOT NULL,
    reference       TEXT,
    idempotency_key TEXT,
    request_hash    BYTEA,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    next_check_at   BIGINT,            -- NULL once terminal
    body            TEXT NOT NULL,
    work            TEXT,
    woken           BOOLEAN NOT NULL DEFAULT FALSE, -- a callback came while a check was in flight
    lease_owner     TEXT,              -- the instance working on it
    lease_until     BIGINT
);

CREATE UNIQUE INDEX sessions_idempotency ON sessions (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_due ON sessions (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX sessions_tenant_id ON sessions (tenant, id);
CREATE INDEX sessions_open_signer ON sessions (tenant, signer) WHERE next_check_at IS NOT NULL;

-- The per-tenant event stream. `seq` has no gaps: tenant_seq's row lock serialises a tenant's
-- writers, so when seq N is visible every smaller seq is too.
CREATE TABLE outbox (
    tenant     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    frame      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, seq)
);

CREATE TABLE tenant_seq (
    tenant   TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
