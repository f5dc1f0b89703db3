-- Named queries both dialects run as written. Parameters are :name; {words} are filled in from
-- the state machine (jobs.TRANSITIONS), the job's declared fields, or the dialect (queries.py).
-- A dialect's own queries are in <dialect>/queries.sql; a name is defined in one place only.

-- name: ping
SELECT 1;

-- name: schema_version
SELECT coalesce(max(version), 0) AS v FROM schema_version;

-- name: get_job
SELECT * FROM jobs WHERE id = :id;

-- name: job_status :when_full
SELECT status FROM jobs WHERE id = :id;

-- name: import_jobs
INSERT INTO jobs ({job_columns}) VALUES ({job_values});

-- name: delete_job :when_full
DELETE FROM jobs WHERE id = :id AND status IN {terminal};

-- name: prune :when_full
-- Oldest finished first, a bounded batch; PostgreSQL skips rows another pruner holds.
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE (status IN {completed} AND finished_at < :completed_before)
       OR (status IN {failed} AND finished_at < :failed_before)
    ORDER BY finished_at
    LIMIT :limit
    {skip_locked}
);

-- name: prune_task_results :when_full
-- One task's completed jobs past its own result_ttl, oldest first, a bounded batch. A workflow's
-- jobs stay for the workflow's retention (keep_completed): its children read their results.
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE status IN {completed} AND finished_at < :before AND task = :task
      AND workflow_id IS NULL
    ORDER BY finished_at
    LIMIT :limit
    {skip_locked}
);

-- name: cancel_requests
SELECT id FROM jobs WHERE worker_id = :worker AND status = {running} AND cancel_requested;

-- name: record_progress :relaxed :when_full
UPDATE jobs SET progress = :progress, updated_at = :now
WHERE id = :id AND attempt = :attempt AND worker_id = :worker AND status = {running};

-- name: expired_jobs
SELECT * FROM jobs WHERE status = {running} AND lease_expires_at < :now
ORDER BY lease_expires_at LIMIT :limit;

-- name: cancel_job :when_full
-- One statement either way: a waiting job ends at once, a running one is flagged.
UPDATE jobs SET
    status = CASE WHEN status IN {unstarted} THEN {cancelled} ELSE status END,
    finished_at = CASE WHEN status IN {unstarted} THEN :now ELSE finished_at END,
    cancel_requested = true, updated_at = :now
WHERE id = :id AND status IN {cancellable}
RETURNING *;

-- name: retry_job :wakes
-- Not while another job holds its unique key (see ../uniqueness.py: held_keys says which).
-- A workflow job whose parents are not all settled waits for them again.
UPDATE jobs SET status = CASE WHEN waiting_on > 0 THEN {waiting} ELSE {requeued} END,
    run_at = :now, updated_at = :now, uncounted = attempt, blocked_by = NULL,
    finished_at = NULL, result = NULL, error = NULL, traceback = NULL,
    cancel_requested = false, progress = NULL, lease_expires_at = NULL
WHERE id = :id AND status IN {retryable}
  AND NOT EXISTS (SELECT 1 FROM jobs AS holder WHERE {key_held})
RETURNING *;

-- name: touch_worker :relaxed :when_full
UPDATE workers SET last_seen_at = :now, running = :running WHERE id = :worker;

-- name: register_worker :when_full
INSERT INTO workers (id, host, pid, queues, concurrency, started_at, last_seen_at, running,
    incarnation)
VALUES (:id, :host, :pid, :queues, :concurrency, :started_at, :last_seen_at, :running,
    :incarnation)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    incarnation = excluded.incarnation,
    queues = excluded.queues, concurrency = excluded.concurrency,
    started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
    running = excluded.running;

-- name: deregister_worker :when_full
DELETE FROM workers WHERE id = :id;

-- name: list_workers
SELECT * FROM workers ORDER BY started_at;

-- name: try_lead :when_full
-- One guarded write: the role is taken if free, expired, or already the holder's.
INSERT INTO leaders (role, holder, expires_at) VALUES (:role, :holder, :until)
ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leaders.expires_at <= :now OR leaders.holder = excluded.holder;

-- name: resign :when_full
DELETE FROM leaders WHERE role = :role AND holder = :holder;

-- name: add_token
INSERT INTO tokens (name, scope, hash, created_at, concurrency_key)
VALUES (:name, :scope, :hash, :created_at, :concurrency_key);

-- name: list_tokens
SELECT * FROM tokens ORDER BY created_at, name;

-- name: revoke_token :when_full
DELETE FROM tokens WHERE name = :name;

-- name: token_access
SELECT hash, scope, concurrency_key FROM tokens;

-- name: touch_token :when_full
UPDATE tokens SET last_used_at = :now WHERE hash = :hash;
