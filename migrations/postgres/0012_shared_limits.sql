-- Limits and single-use secrets shared by every instance (issue 17): a portal behind a load
-- balancer meets one gateway. Token buckets per tenant, fixed windows per (tenant, signer),
-- and USB challenges and WebSocket tickets usable once on any instance.
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE TABLE rate_windows (
    key TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX rate_windows_started ON rate_windows (started_ms);
CREATE TABLE single_use (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    scope TEXT NOT NULL,
    value BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX single_use_scope ON single_use (kind, scope, expires_ms);
