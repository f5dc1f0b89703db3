-- Unique jobs and idempotent submits.
ALTER TABLE jobs ADD COLUMN unique_key text;
ALTER TABLE jobs ADD COLUMN unique_until double precision;

-- The default scope: one waiting or running job per key. The index holds only live jobs, so a
-- job that ends frees its key in the same write, with nothing to clean up. The predicate
-- spells the statuses as the queries' {cancellable} word does, so ON CONFLICT finds it.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND unique_until IS NULL
      AND status IN ('processing', 'queued', 'scheduled');
-- The job that last held a key (a duplicate submit answers with it).
CREATE INDEX jobs_unique_key ON jobs (unique_key, seq) WHERE unique_key IS NOT NULL;

-- The window scope: a key held for a time whatever becomes of its job. An index predicate
-- cannot say "until now", so a key is a row here that a later submit takes over once it
-- expired (judged by the submit's own now); the pruner deletes expired rows.
CREATE TABLE unique_windows (
    key text PRIMARY KEY,
    job_id text NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX unique_windows_expiry ON unique_windows (expires_at);

-- Idempotency-Key: one row per (token, key), written in the transaction of the jobs it
-- created: the body's fingerprint, and per job the id it asked for and its unique key.
CREATE TABLE idempotency (
    owner text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    batch boolean NOT NULL,
    items jsonb NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
