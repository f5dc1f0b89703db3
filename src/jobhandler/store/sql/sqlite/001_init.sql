-- Jobs, in insertion order (seq), with the partial indexes the hot paths read.
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
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
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress TEXT
);

-- The claim: due jobs of a queue, highest priority first, then oldest.
CREATE INDEX jobs_due ON jobs (queue, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled');
-- Heartbeats and cancel polls by worker; the rescuer by lease expiry.
CREATE INDEX jobs_running_worker ON jobs (worker_id) WHERE status = 'processing';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'processing';
-- Listing filtered by status, queue or task, newest first.
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
CREATE INDEX jobs_task_seq ON jobs (task, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    running INTEGER NOT NULL DEFAULT 0
);
