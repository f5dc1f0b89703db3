-- A token bound to a concurrency key (docs/tenants.md): its jobs get that key, and it sees and
-- steers only jobs of it. NULL: a token of no tenant, as every token was before. Additive only:
-- a release before this one reads its columns by name and inserts tokens without the key.
ALTER TABLE tokens ADD COLUMN concurrency_key TEXT;

-- Such a token lists only its key's jobs, newest first: one index range however many jobs the
-- other tenants have. Keyed jobs only; unkeyed ones (most, in a store of no tenants) skip it.
CREATE INDEX jobs_by_key ON jobs (concurrency_key, seq) WHERE concurrency_key IS NOT NULL;
