-- no-transaction
-- Retention finds bundles not stored for days through this index (built CONCURRENTLY, see 0007).
CREATE INDEX CONCURRENTLY IF NOT EXISTS cert_bundles_created ON cert_bundles (created_at);
