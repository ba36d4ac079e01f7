-- The scheduler's indexes (issue 17): due sessions per provider and tenant, so a claim reads
-- only the rows it takes and serves tenants fairly; expiry per provider by its own order, so
-- expired sessions are found without walking the due ones.
CREATE INDEX sessions_provider_tenant_due ON sessions (provider, tenant, next_check_at)
    WHERE next_check_at IS NOT NULL;
CREATE INDEX sessions_provider_expiry ON sessions (provider, expires_at)
    WHERE next_check_at IS NOT NULL;
DROP INDEX sessions_due;
