-- Attempt history and job counts, both kept by triggers: in the transaction of the statement
-- that moves a job, whichever operation wrote it (a claim, a finish or the rescuer's, a cancel,
-- a retry, a submit, an import, a prune), written once here rather than in each operation.

-- Attempt history. A job's row always shows its last run (attempt, worker_id, started_at,
-- error, traceback; finished_at or, for a run that ended in a retry, updated_at); the run
-- before it is kept here once something is about to overwrite it: the next claim, a user's
-- retry or cancel. So a job that runs once (the common case) writes no history at all, and a
-- retried one writes each earlier run once, in the transaction of the transition that moves
-- it on. ``outcome`` is the status the run left the job in (scheduled: retried; queued:
-- handed back at shutdown). Deleted with the job by jobs_count_delete below.
CREATE TABLE job_attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT,
    started_at REAL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    traceback TEXT,
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

-- OR IGNORE: a user retry keeps the run, then the claim after it finds it kept already.
CREATE TRIGGER jobs_run_kept AFTER UPDATE OF status ON jobs
WHEN OLD.attempt > 0 AND OLD.status <> 'processing' AND NEW.status <> OLD.status
BEGIN
    INSERT OR IGNORE INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback)
    VALUES (OLD.id, OLD.attempt, OLD.worker_id, OLD.started_at,
        coalesce(OLD.finished_at, OLD.updated_at), OLD.status, OLD.error, OLD.traceback);
END;

-- How many jobs each queue holds in each status, kept as jobs move, so GET /queues reads a
-- few rows instead of counting the table. A row per queue, a column per status: a transition
-- is one UPDATE of one row (writes are serial on SQLite anyway, so a row every transition
-- updates costs no concurrency).
CREATE TABLE queue_counts (
    queue TEXT PRIMARY KEY,
    queued INTEGER NOT NULL DEFAULT 0,
    scheduled INTEGER NOT NULL DEFAULT 0,
    processing INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO queue_counts
SELECT queue, sum(status = 'queued'), sum(status = 'scheduled'), sum(status = 'processing'),
    sum(status = 'completed'), sum(status = 'failed'), sum(status = 'cancelled')
FROM jobs WHERE true GROUP BY queue;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
BEGIN
    INSERT INTO queue_counts VALUES (NEW.queue, NEW.status = 'queued',
        NEW.status = 'scheduled', NEW.status = 'processing', NEW.status = 'completed',
        NEW.status = 'failed', NEW.status = 'cancelled')
    ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
        scheduled = scheduled + excluded.scheduled, processing = processing + excluded.processing,
        completed = completed + excluded.completed, failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
END;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
BEGIN
    UPDATE queue_counts SET queued = queued - (OLD.status = 'queued'),
        scheduled = scheduled - (OLD.status = 'scheduled'),
        processing = processing - (OLD.status = 'processing'),
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'), cancelled = cancelled - (OLD.status = 'cancelled')
    WHERE queue = OLD.queue;
    DELETE FROM job_attempts WHERE job_id = OLD.id;
END;

CREATE TRIGGER jobs_count_update AFTER UPDATE OF status ON jobs
WHEN OLD.status <> NEW.status AND OLD.queue = NEW.queue
BEGIN
    UPDATE queue_counts SET
        queued = queued + (NEW.status = 'queued') - (OLD.status = 'queued'),
        scheduled = scheduled + (NEW.status = 'scheduled') - (OLD.status = 'scheduled'),
        processing = processing + (NEW.status = 'processing') - (OLD.status = 'processing'),
        completed = completed + (NEW.status = 'completed') - (OLD.status = 'completed'),
        failed = failed + (NEW.status = 'failed') - (OLD.status = 'failed'),
        cancelled = cancelled + (NEW.status = 'cancelled') - (OLD.status = 'cancelled')
    WHERE queue = NEW.queue;
END;

-- A job moved to another queue (nothing does that today): out of one row, into the other.
CREATE TRIGGER jobs_count_move AFTER UPDATE OF queue ON jobs
WHEN OLD.queue <> NEW.queue
BEGIN
    UPDATE queue_counts SET queued = queued - (OLD.status = 'queued'),
        scheduled = scheduled - (OLD.status = 'scheduled'),
        processing = processing - (OLD.status = 'processing'),
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'), cancelled = cancelled - (OLD.status = 'cancelled')
    WHERE queue = OLD.queue;
    INSERT INTO queue_counts VALUES (NEW.queue, NEW.status = 'queued',
        NEW.status = 'scheduled', NEW.status = 'processing', NEW.status = 'completed',
        NEW.status = 'failed', NEW.status = 'cancelled')
    ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
        scheduled = scheduled + excluded.scheduled, processing = processing + excluded.processing,
        completed = completed + excluded.completed, failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
END;

-- Finished jobs by time and status: the throughput chart reads only this index, and pruning
-- (oldest finished first) uses it as before.
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, status) WHERE finished_at IS NOT NULL;

-- The live feed polls for jobs changed since a watermark.
CREATE INDEX jobs_updated ON jobs (updated_at);
