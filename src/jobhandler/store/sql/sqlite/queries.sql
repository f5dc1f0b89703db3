-- SQLite's own named queries (see ../shared.sql). A list parameter is JSON text, read with
-- json_each: one parameter however many items (SQLite caps the number of parameters).

-- name: insert_jobs :wakes
-- A job whose unique key a live job holds is skipped (see uniqueness.py).
INSERT INTO jobs ({new_columns}) VALUES ({new_values})
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND unique_until IS NULL
    AND status IN {cancellable} DO NOTHING;

-- name: job_statuses
SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: jobs_by_seq
SELECT * FROM jobs WHERE seq IN (SELECT value FROM json_each(:seqs));

-- name: finish_job :relaxed :when_full
-- One outcome: its target and sources come from the state machine, as parameters. :sources is
-- a JSON array of status names: a quoted name is found in it by instr (cheaper, once per
-- outcome, than json_each; no status name is part of another).
UPDATE jobs SET status = :target, result = :result, error = :error, traceback = :traceback,
    run_at = coalesce(:run_at, run_at), finished_at = :finished_at, updated_at = :now,
    uncounted = uncounted + CASE WHEN interrupted < {free_interruptions} THEN :uncount ELSE 0 END,
    interrupted = interrupted + :uncount, lease_expires_at = NULL
WHERE id = :id AND attempt = :attempt AND instr(:sources, '"' || status || '"') > 0
  AND (:expired_by IS NULL OR lease_expires_at < :expired_by)
  AND (:worker IS NULL OR worker_id = :worker);

-- name: extend_leases :relaxed :when_full
UPDATE jobs SET lease_expires_at = :lease_until
WHERE worker_id = :worker AND status = {running}
  AND (id, attempt) IN (
    SELECT i.value, a.value FROM json_each(:ids) AS i JOIN json_each(:attempts) AS a USING (key)
  )
RETURNING id, attempt, cancel_requested;

-- name: prune_except :when_full
-- prune (../shared.sql), leaving the completed jobs of tasks with their own result_ttl (outside
-- workflows) to prune_task_results.
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE (status IN {completed} AND finished_at < :completed_before
           AND NOT (workflow_id IS NULL AND task IN (SELECT value FROM json_each(:own_ttl))))
       OR (status IN {failed} AND finished_at < :failed_before)
    ORDER BY finished_at
    LIMIT :limit
    {skip_locked}
);

-- name: prune_key_buckets :when_full
-- Key rate buckets idle long enough to be full again, and those whose queue or task has no
-- key rate limit any more: a full bucket is the same as no row (a key first seen starts full).
-- (SQLite: one writer at a time, no claim spends one between the read and the delete.)
DELETE FROM key_buckets WHERE (scope, name, key) IN (
    SELECT b.scope, b.name, b.key FROM key_buckets AS b
    LEFT JOIN flow_limits AS l ON l.scope = b.scope AND l.name = b.name
    WHERE l.key_rate_count IS NULL OR b.tokens
        + (:now - b.refilled_at) * l.key_rate_count / l.key_rate_period >= l.key_rate_count
    LIMIT :limit
);
