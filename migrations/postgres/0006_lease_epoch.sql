-- Fencing for leases. Every claim of a session (a scheduler claim, a push's claim, a leased
-- create) moves `lease_epoch` on by one and hands the claimer the new value; every write the
-- holder makes afterwards (its status change, reschedule, renewal, release) names its owner and
-- that epoch, so a holder whose lease lapsed and was taken over writes nothing, even after the
-- new holder has given the session back and claimed it again.
ALTER TABLE sessions ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;

-- The database's clock in unix milliseconds: lease expiry and renewal read it, never an
-- instance's clock, so clock skew between instances cannot shorten a lease. `now()` is the
-- transaction's start, which is STABLE, so the planner may still use an index beside it.
CREATE FUNCTION kyso_now_ms() RETURNS BIGINT
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;
