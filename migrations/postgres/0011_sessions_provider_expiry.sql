-- no-transaction
-- Expired sessions per provider by their own order (issue 17), found without walking the due
-- ones while the provider is out of tokens or its circuit is open.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_provider_expiry
    ON sessions (provider, expires_at) WHERE next_check_at IS NOT NULL;
