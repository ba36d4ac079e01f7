-- A push's claim changes only unindexed columns (the lease, `woken`), so PostgreSQL can write it
-- as a heap-only tuple — no new entry in any of the five indexes — but only when the row's page
-- has room for the new version. Pages filled to the brim by inserts had room for under half of
-- the claims in the throughput bench; a fifth of each new page is now kept for them.
-- Existing pages keep their fill; new ones (and a rewritten table) follow the setting.
SET LOCAL lock_timeout = '5s';
ALTER TABLE sessions SET (fillfactor = 80);
