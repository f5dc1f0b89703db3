-- The same CHECK constraints as the PostgreSQL schema (whose types also check the booleans).
-- SQLite cannot add a CHECK to a table, so the table is rebuilt, its rows and indexes kept.
CREATE TABLE jobs_checked (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (
        status IN ('queued', 'scheduled', 'processing', 'completed', 'failed', 'cancelled')
    ),
    priority INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    uncounted INTEGER NOT NULL DEFAULT 0,
    timeout REAL,
    run_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    result TEXT,
    error TEXT,
    traceback TEXT,
    worker_id TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress TEXT
);
INSERT INTO jobs_checked SELECT * FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_checked RENAME TO jobs;

CREATE INDEX jobs_due ON jobs (queue, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled');
CREATE INDEX jobs_running_worker ON jobs (worker_id) WHERE status = 'processing';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
CREATE INDEX jobs_task_seq ON jobs (task, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
