-- Retention (engine/retention.rs) prunes finished sessions, old events and unused certificate
-- bundles in small batches; these indexes find them without reading the tables. Index builds
-- only: no stop needed (writes wait while each builds).
CREATE INDEX sessions_finished ON sessions (expires_at) WHERE next_check_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX cert_bundles_created ON cert_bundles (created_at);
