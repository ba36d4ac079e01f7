-- Every status change rewrites a session's body (~5 KB once signed: certificate, chain,
-- identity) and often its provider work state, which PostgreSQL compresses on their way to
-- TOAST; with the default pglz that was ~8 % of the server's CPU in the throughput bench.
-- lz4 compresses several times faster.
-- A server built without lz4 (or older than 14) keeps pglz: this is a speed-up, not a need.
-- ALTER TABLE waits for an exclusive lock: on a busy database give up (and fail the start, to
-- be retried) rather than queue every other statement behind it.
SET LOCAL lock_timeout = '5s';
DO $$
BEGIN
    EXECUTE 'ALTER TABLE sessions ALTER COLUMN body SET COMPRESSION lz4,
                                  ALTER COLUMN work SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE outbox ALTER COLUMN frame SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'sessions and outbox keep the default compression: %', SQLERRM;
END
$$;
