-- A due session the scheduler has taken is "claimed": its next_check_at is pushed to the end
-- of a lease (renewed while a provider call is in flight), so the next look at due work skips
-- it without reading it. One instance owns the file, so a restart gives every claim back.
ALTER TABLE sessions ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
