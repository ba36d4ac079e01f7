-- no-transaction
-- Retention finds old events by creation time through this index (built CONCURRENTLY, see 0007).
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_created ON outbox (created_at);
