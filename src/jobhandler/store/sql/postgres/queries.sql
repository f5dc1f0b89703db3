-- PostgreSQL's own named queries (see ../shared.sql). A list parameter is an array.

-- name: insert_jobs :columnar
-- The whole batch as one array per column, in one statement; NOTIFY goes out at commit.
WITH inserted AS (
    INSERT INTO jobs ({new_columns})
    SELECT * FROM unnest(
        :id::text[], :task::text[], :queue::text[], :payload::json[], :priority::int[],
        :max_attempts::int[], :timeout::float8[], :run_at::float8[],
        :unique_key::text[], :unique_until::float8[], :trace_context::text[],
        :concurrency_key::text[], :status::text[], :created_at::float8[], :updated_at::float8[])
    -- A job whose unique key a live job holds is skipped (see uniqueness.py).
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND unique_until IS NULL
        AND status IN {cancellable} DO NOTHING
    RETURNING 1
)
SELECT pg_notify({submit_channel}, '');

-- name: insert_job
-- One job as a plain row: binding each column as a one-element array costs the client more
-- than the insert costs the server. Otherwise as insert_jobs.
WITH inserted AS (
    INSERT INTO jobs ({new_columns}) VALUES ({new_values})
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND unique_until IS NULL
        AND status IN {cancellable} DO NOTHING
    RETURNING 1
)
SELECT pg_notify({submit_channel}, '');

-- name: job_statuses
SELECT id, status FROM jobs WHERE id = ANY(:ids);

-- name: jobs_by_seq
SELECT * FROM jobs WHERE seq = ANY(:seqs);

-- name: finish_job :relaxed
-- One outcome: its target and sources come from the state machine, as parameters. Found by
-- its unique id, so there is no partial index to match, and one text serves every transition.
UPDATE jobs SET status = :target, result = :result, error = :error, traceback = :traceback,
    run_at = coalesce(:run_at, run_at), finished_at = :finished_at, updated_at = :now,
    uncounted = uncounted + CASE WHEN interrupted < {free_interruptions} THEN :uncount ELSE 0 END,
    interrupted = interrupted + :uncount, lease_expires_at = NULL
WHERE id = :id AND attempt = :attempt AND status = ANY(:sources)
  AND (:expired_by::float8 IS NULL OR lease_expires_at < :expired_by)
  AND (:worker::text IS NULL OR worker_id = :worker);

-- name: finish_jobs :columnar :relaxed
-- A batch of outcomes, each naming a different job, in one statement: finish_job's guard and
-- values per outcome, one array per parameter. :sources holds each outcome's statuses as an
-- array's text (arrays of arrays must be rectangular). Its ordinals tell which outcomes
-- matched; each job is found by its unique id.
UPDATE jobs SET status = o.target, result = o.result, error = o.error, traceback = o.traceback,
    run_at = coalesce(o.run_at, jobs.run_at), finished_at = o.finished_at, updated_at = o.now,
    uncounted = jobs.uncounted
        + CASE WHEN jobs.interrupted < {free_interruptions} THEN o.uncount ELSE 0 END,
    interrupted = jobs.interrupted + o.uncount, lease_expires_at = NULL
FROM unnest(
    :id::text[], :attempt::int[], :target::text[], :sources::text[], :result::json[],
    :error::text[], :traceback::text[], :run_at::float8[], :finished_at::float8[],
    :now::float8[], :uncount::int[], :expired_by::float8[], :worker::text[]
) WITH ORDINALITY AS o(id, attempt, target, sources, result, error, traceback, run_at,
    finished_at, now, uncount, expired_by, worker, ordinal)
WHERE jobs.id = o.id AND jobs.attempt = o.attempt AND jobs.status = ANY(o.sources::text[])
  AND (o.expired_by IS NULL OR jobs.lease_expires_at < o.expired_by)
  AND (o.worker IS NULL OR jobs.worker_id = o.worker)
RETURNING o.ordinal;

-- name: extend_leases :relaxed
UPDATE jobs SET lease_expires_at = :lease_until
WHERE worker_id = :worker AND status = {running}
  AND (id, attempt) IN (SELECT * FROM unnest(:ids::text[], :attempts::int[]))
RETURNING id, attempt, cancel_requested;

-- name: notify_cancel
-- After request_cancel, in its transaction: wake the worker running the job.
SELECT pg_notify({cancel_channel}, id) FROM jobs
WHERE id = :id AND status = {running} AND cancel_requested;

-- name: notify_retry
-- After retry_job, in its transaction: wake the workers (a refused retry only wakes them).
SELECT pg_notify({submit_channel}, '') FROM jobs WHERE id = :id AND status = {requeued};

-- name: prune_except :when_full
-- prune (../shared.sql), leaving the completed jobs of tasks with their own result_ttl (outside
-- workflows) to prune_task_results.
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE (status IN {completed} AND finished_at < :completed_before
           AND NOT (workflow_id IS NULL AND task = ANY(:own_ttl)))
       OR (status IN {failed} AND finished_at < :failed_before)
    ORDER BY finished_at
    LIMIT :limit
    {skip_locked}
);

-- name: prune_key_buckets :when_full
-- Key rate buckets idle long enough to be full again, and those whose queue or task has no
-- key rate limit any more: a full bucket is the same as no row (a key first seen starts full).
-- A bucket a claim holds is passed over; one a claim spent since the read is looked at again
-- as it now stands (FOR UPDATE re-checks the condition on the row's last version).
DELETE FROM key_buckets WHERE (scope, name, key) IN (
    SELECT b.scope, b.name, b.key FROM key_buckets AS b
    LEFT JOIN flow_limits AS l ON l.scope = b.scope AND l.name = b.name
    WHERE l.key_rate_count IS NULL OR b.tokens
        + (:now - b.refilled_at) * l.key_rate_count / l.key_rate_period >= l.key_rate_count
    LIMIT :limit
    FOR UPDATE OF b SKIP LOCKED
);
