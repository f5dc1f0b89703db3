-- Periodic jobs: one row per schedule declared in code (synced when a worker starts). The
-- pause state lives here, so it survives restarts. next_due only moves forward, by a
-- compare-and-set in the transaction that inserts the due run's job: one job per due time.
CREATE TABLE schedules (
    name text PRIMARY KEY,
    task text NOT NULL,
    cron text,
    every double precision,
    timezone text NOT NULL,
    payload jsonb NOT NULL,
    missed text NOT NULL CHECK (missed IN ('skip', 'catch_up')),
    paused boolean NOT NULL DEFAULT false,
    next_due double precision NOT NULL,
    last_due double precision,
    last_job_id text,
    updated_at double precision NOT NULL,
    CHECK ((cron IS NULL) <> (every IS NULL))
);
