-- Periodic jobs: one row per schedule declared in code (synced when a worker starts). The
-- pause state lives here, so it survives restarts. next_due only moves forward, by a
-- compare-and-set in the transaction that inserts the due run's job: one job per due time.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    cron TEXT,
    every REAL,
    timezone TEXT NOT NULL,
    payload TEXT NOT NULL,
    missed TEXT NOT NULL CHECK (missed IN ('skip', 'catch_up')),
    paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    next_due REAL NOT NULL,
    last_due REAL,
    last_job_id TEXT,
    updated_at REAL NOT NULL,
    CHECK ((cron IS NULL) <> (every IS NULL))
);
