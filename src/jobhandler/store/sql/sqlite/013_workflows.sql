-- Workflows: jobs that run after other jobs (../../../model/workflows.py).
--
-- A job of a workflow names its parents (after: their ids, as JSON, up to a few dozen; past
-- that only job_deps does, since the row is rewritten as each parent settles), counts them
-- (parents) and counts those not yet settled (waiting_on); while any are, it is 'waiting'. An edge per (parent, child) records
-- whether the parent settled it. A parent's own finishing write settles its edges, through the
-- trigger jobs_settle below, in the same transaction: SQLite runs one write at a time, so two
-- parents finishing together lower the count one after the other and the last one promotes.
-- A parent that failed or was cancelled cancels a child that does not run on parent failure
-- (blocked_by names it), and that cancel settles the child's own edges in turn (the dialect
-- turns recursive_triggers on). A user's retry of the parent reopens its edges and puts back
-- the children it cancelled (jobs_reopen).
--
-- 'waiting' is a new status, so the status CHECK changes: SQLite cannot alter a CHECK, and the
-- table is rebuilt as in 004, with its rows, indexes and triggers.

CREATE TABLE jobs_workflows (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (
        status IN ('waiting', 'queued', 'scheduled', 'processing', 'completed', 'failed',
            'cancelled')
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
    progress TEXT,
    unique_key TEXT,
    unique_until REAL,
    trace_context TEXT,
    workflow_id TEXT,
    workflow_key TEXT,
    after TEXT,
    parents INTEGER NOT NULL DEFAULT 0,
    waiting_on INTEGER NOT NULL DEFAULT 0,
    dependents INTEGER NOT NULL DEFAULT 0,
    on_parent_failure TEXT CHECK (on_parent_failure IN ('cancel', 'run')),
    blocked_by TEXT
);
INSERT INTO jobs_workflows (seq, id, task, queue, payload, status, priority, attempt,
    max_attempts, uncounted, timeout, run_at, created_at, updated_at, started_at, finished_at,
    result, error, traceback, worker_id, lease_expires_at, cancel_requested, progress,
    unique_key, unique_until, trace_context)
SELECT seq, id, task, queue, payload, status, priority, attempt, max_attempts, uncounted,
    timeout, run_at, created_at, updated_at, started_at, finished_at, result, error, traceback,
    worker_id, lease_expires_at, cancel_requested, progress, unique_key, unique_until,
    trace_context
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_workflows RENAME TO jobs;

CREATE INDEX jobs_due ON jobs (queue, priority DESC, run_at, seq)
    WHERE status IN ('queued', 'scheduled');
CREATE INDEX jobs_running_worker ON jobs (worker_id) WHERE status = 'processing';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
CREATE INDEX jobs_task_seq ON jobs (task, seq);
-- A waiting job holds its unique key as a queued one does ({cancellable} now says 'waiting').
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND unique_until IS NULL
      AND status IN ('processing', 'queued', 'scheduled', 'waiting');
CREATE INDEX jobs_unique_key ON jobs (unique_key, seq) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (finished_at, status) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_updated ON jobs (updated_at);
CREATE INDEX jobs_workflow ON jobs (workflow_id, seq) WHERE workflow_id IS NOT NULL;

ALTER TABLE queue_counts ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER jobs_run_kept AFTER UPDATE OF status ON jobs
WHEN OLD.attempt > 0 AND OLD.status <> 'processing' AND NEW.status <> OLD.status
BEGIN
    INSERT OR IGNORE INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback)
    VALUES (OLD.id, OLD.attempt, OLD.worker_id, OLD.started_at,
        coalesce(OLD.finished_at, OLD.updated_at), OLD.status, OLD.error, OLD.traceback);
END;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
BEGIN
    UPDATE queue_counts SET queued = queued - (OLD.status = 'queued'),
        scheduled = scheduled - (OLD.status = 'scheduled'),
        processing = processing - (OLD.status = 'processing'),
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'), cancelled = cancelled - (OLD.status = 'cancelled'),
        waiting = waiting - (OLD.status = 'waiting')
    WHERE queue = OLD.queue;
    DELETE FROM job_attempts WHERE job_id = OLD.id;
    DELETE FROM job_deps WHERE child_id = OLD.id;
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
        cancelled = cancelled + (NEW.status = 'cancelled') - (OLD.status = 'cancelled'),
        waiting = waiting + (NEW.status = 'waiting') - (OLD.status = 'waiting')
    WHERE queue = NEW.queue;
END;

CREATE TRIGGER jobs_count_move AFTER UPDATE OF queue ON jobs
WHEN OLD.queue <> NEW.queue
BEGIN
    UPDATE queue_counts SET queued = queued - (OLD.status = 'queued'),
        scheduled = scheduled - (OLD.status = 'scheduled'),
        processing = processing - (OLD.status = 'processing'),
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'), cancelled = cancelled - (OLD.status = 'cancelled'),
        waiting = waiting - (OLD.status = 'waiting')
    WHERE queue = OLD.queue;
    INSERT INTO queue_counts VALUES (NEW.queue, NEW.status = 'queued',
        NEW.status = 'scheduled', NEW.status = 'processing', NEW.status = 'completed',
        NEW.status = 'failed', NEW.status = 'cancelled', NEW.status = 'waiting')
    ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
        scheduled = scheduled + excluded.scheduled, processing = processing + excluded.processing,
        completed = completed + excluded.completed, failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled, waiting = waiting + excluded.waiting;
END;

CREATE TABLE workflows (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    cancelled_at REAL
);
CREATE INDEX workflows_name ON workflows (name, seq);

CREATE TABLE job_deps (
    parent_id TEXT NOT NULL,
    child_id TEXT NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1)),
    PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;
CREATE INDEX job_deps_child ON job_deps (child_id);

-- A parent finished: each child waits on one parent fewer. A child still waiting whose parent
-- failed or was cancelled is cancelled, unless it runs on parent failure; one whose count
-- reaches zero is due (or scheduled, if its run_at is ahead). The count stays exact whatever
-- the child's status, so a retry of the parent can reopen the edge (jobs_reopen).
-- Two steps: the count alone first, for every child (a column no index holds, so no index is
-- written: in a fan-in of 10,000 the child is updated 10,000 times), then the status of the
-- few children that move.
CREATE TRIGGER jobs_settle AFTER UPDATE OF status ON jobs
WHEN NEW.dependents > 0 AND NEW.status IN ('cancelled', 'completed', 'failed')
  AND OLD.status NOT IN ('cancelled', 'completed', 'failed')
BEGIN
    UPDATE jobs SET waiting_on = waiting_on - 1
    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = NEW.id AND settled = 0);
    UPDATE job_deps SET settled = 1 WHERE parent_id = NEW.id AND settled = 0;
    UPDATE jobs SET
        updated_at = NEW.updated_at,
        status = CASE
            WHEN NEW.status <> 'completed' AND coalesce(on_parent_failure, 'cancel') <> 'run'
                THEN 'cancelled'
            WHEN run_at > NEW.updated_at THEN 'scheduled'
            ELSE 'queued' END,
        blocked_by = CASE
            WHEN NEW.status <> 'completed' AND coalesce(on_parent_failure, 'cancel') <> 'run'
                THEN NEW.id
            ELSE blocked_by END,
        error = CASE
            WHEN NEW.status <> 'completed' AND coalesce(on_parent_failure, 'cancel') <> 'run'
                THEN 'parent ' || coalesce(NEW.workflow_key, NEW.id) || ' (' || NEW.id || ') '
                    || CASE NEW.status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END
            ELSE error END,
        finished_at = CASE
            WHEN NEW.status <> 'completed' AND coalesce(on_parent_failure, 'cancel') <> 'run'
                THEN NEW.updated_at
            ELSE finished_at END
    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = NEW.id)
      AND status = 'waiting'
      AND (waiting_on = 0 OR (NEW.status <> 'completed'
        AND coalesce(on_parent_failure, 'cancel') <> 'run'));
END;

-- A finished parent runs again (a user's retry): its edges are open again, and the children
-- its end cancelled wait for it once more, unless another parent that failed still blocks
-- them (then that one is named, in blocked_by and the error). A child that was due (the
-- parent had failed under "run", or the child was retried) waits for it again too: no job is
-- due while a parent is unsettled. '' marks, within this trigger, a child to put back.
CREATE TRIGGER jobs_reopen AFTER UPDATE OF status ON jobs
WHEN NEW.dependents > 0 AND OLD.status IN ('cancelled', 'completed', 'failed')
  AND NEW.status NOT IN ('cancelled', 'completed', 'failed')
BEGIN
    UPDATE jobs SET
        waiting_on = waiting_on + 1,
        updated_at = NEW.updated_at,
        status = CASE WHEN status IN ('queued', 'scheduled') THEN 'waiting' ELSE status END,
        error = CASE WHEN status = 'cancelled' AND blocked_by = NEW.id THEN (
            SELECT 'parent ' || coalesce(p.workflow_key, p.id) || ' (' || p.id || ') '
                || CASE p.status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END
            FROM job_deps AS d JOIN jobs AS p ON p.id = d.parent_id
            WHERE d.child_id = jobs.id AND d.parent_id <> NEW.id
              AND p.status IN ('cancelled', 'failed') ORDER BY d.parent_id LIMIT 1
        ) ELSE error END,
        blocked_by = CASE WHEN status = 'cancelled' AND blocked_by = NEW.id THEN coalesce((
            SELECT d.parent_id FROM job_deps AS d JOIN jobs AS p ON p.id = d.parent_id
            WHERE d.child_id = jobs.id AND d.parent_id <> NEW.id
              AND p.status IN ('cancelled', 'failed') ORDER BY d.parent_id LIMIT 1
        ), '') ELSE blocked_by END
    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = NEW.id AND settled = 1);
    UPDATE jobs SET status = 'waiting', blocked_by = NULL, error = NULL, finished_at = NULL
    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = NEW.id AND settled = 1)
      AND blocked_by = '';
    UPDATE job_deps SET settled = 0 WHERE parent_id = NEW.id AND settled = 1;
END;

-- A job that comes due again (a user's retry, a rescue, a release, a retry after a backoff)
-- while a parent is unsettled waits for it instead: no job is due while a parent is unsettled
-- (a job cancelled before its parents finished, or running when a parent was retried). A
-- user's retry also ends its blocking: no parent blocks it any more. (SQLite's RETURNING shows
-- the statement's own write, 'queued'; the row says 'waiting'.)
CREATE TRIGGER jobs_due_waits AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('queued', 'scheduled') AND NEW.waiting_on > 0
BEGIN
    UPDATE jobs SET status = 'waiting' WHERE id = NEW.id;
END;
CREATE TRIGGER jobs_retry_unblocks AFTER UPDATE OF status ON jobs
WHEN OLD.status IN ('cancelled', 'failed') AND NEW.status = 'queued'
  AND NEW.blocked_by IS NOT NULL
BEGIN
    UPDATE jobs SET blocked_by = NULL WHERE id = NEW.id;
END;
