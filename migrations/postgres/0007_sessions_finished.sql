-- no-transaction
-- Retention finds finished sessions by expiry through this index. Built CONCURRENTLY (no
-- transaction, one statement per migration) so older instances keep writing meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_finished ON sessions (expires_at)
    WHERE next_check_at IS NULL;
