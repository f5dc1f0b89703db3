-- Jobs, in insertion order (seq), with the partial indexes the hot paths read.
-- Times are float seconds since the epoch, like the SQLite store (see postgres.py).
CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    task text NOT NULL,
    queue text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL CHECK (
        status IN ('queued', 'scheduled', 'processing', 'completed', 'failed', 'cancelled')
    ),
    priority integer NOT NULL DEFAULT 0,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    uncounted integer NOT NULL DEFAULT 0,
    timeout double precision,
    run_at double precision NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    result jsonb,
    error text,
    traceback text,
    worker_id text,
    lease_expires_at double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress jsonb
);

-- The claim: due jobs of a queue, highest priority first, then oldest. Partial, so it stays
-- as small as the backlog however many finished jobs the table keeps.
CREATE INDEX jobs_due ON jobs (queue, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled');
-- Heartbeats and cancel polls by worker; the rescuer by lease expiry.
CREATE INDEX jobs_running_worker ON jobs (worker_id) WHERE status = 'processing';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'processing';
-- Listing filtered by status, queue or task, newest first.
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
CREATE INDEX jobs_task_seq ON jobs (task, seq);
-- Pruning, oldest finished first.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    queues jsonb NOT NULL,
    concurrency integer NOT NULL,
    started_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    running integer NOT NULL DEFAULT 0
);
