-- no-transaction
-- Due sessions per provider and tenant (issue 17): a claim reads only the rows it takes and
-- serves tenants fairly. Built CONCURRENTLY so older instances keep writing meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_provider_tenant_due
    ON sessions (provider, tenant, next_check_at) WHERE next_check_at IS NOT NULL;
