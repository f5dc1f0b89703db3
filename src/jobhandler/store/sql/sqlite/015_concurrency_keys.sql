-- Concurrency keys (docs/tenants.md): a job's tenant, claimed round-robin against the other
-- keys of its queue, under per-key limits of its queue or task.
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;

-- Per-key limits beside the queue's or task's own: key_concurrency jobs of one key processing
-- at once; key_rate_count per key_rate_period seconds for each key (a bucket in key_buckets).
ALTER TABLE flow_limits ADD COLUMN key_concurrency INTEGER CHECK (key_concurrency >= 1);
ALTER TABLE flow_limits ADD COLUMN key_rate_limit TEXT;
ALTER TABLE flow_limits ADD COLUMN key_rate_count INTEGER CHECK (key_rate_count >= 1);
ALTER TABLE flow_limits ADD COLUMN key_rate_period REAL CHECK (key_rate_period > 0);
ALTER TABLE flow_limits ADD COLUMN declared_key_concurrency INTEGER;
ALTER TABLE flow_limits ADD COLUMN declared_key_rate_limit TEXT;

-- The claim's index keeps the unkeyed jobs alone, so a keyed backlog never lies in the path of
-- the unkeyed drain; keyed jobs have their own, walked key by key (a loose index scan).
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (queue, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled') AND concurrency_key IS NULL;
CREATE INDEX jobs_due_keyed ON jobs (queue, concurrency_key, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled') AND concurrency_key IS NOT NULL;
-- What each key has processing, for key_concurrency.
CREATE INDEX jobs_running_keyed ON jobs (concurrency_key, queue, task)
    WHERE status = 'processing' AND concurrency_key IS NOT NULL;

-- A key's rate bucket under a queue's or task's key_rate_limit; no row: a full bucket.
CREATE TABLE key_buckets (
    scope TEXT NOT NULL CHECK (scope IN ('queue', 'task')),
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    tokens REAL NOT NULL,
    refilled_at REAL NOT NULL,
    PRIMARY KEY (scope, name, key)
);

-- Where each queue's round-robin stands: the key served last ('' for its unkeyed jobs).
CREATE TABLE key_cursors (
    queue TEXT PRIMARY KEY,
    last_key TEXT NOT NULL
);
