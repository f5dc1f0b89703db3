-- The claim, with flow control (see ../../queues.py). One statement; SQLite runs one write
-- transaction at a time (BEGIN IMMEDIATE), so what a limit allows is counted with no race.
--
-- Jobs of queues and tasks with no limit are picked as before, through the partial index
-- (free). Jobs under a limit (held) are picked only when a limit row exists, so the common
-- case reads nothing more: the limited queues drive their own index lookups, and the look-
-- ahead over tasks runs only when some task is limited. Each limit allows `room` more now:
-- its concurrency minus the jobs of it processing, and the whole tokens of its rate bucket.
-- A job under a task and a queue limit must fit both: ranked first within its task, then,
-- among those that fit, within its queue. A paused queue gives nothing. :queues is one
-- parameter per queue. INDEXED BY: over several queues SQLite would otherwise pick
-- jobs_queue_seq and read every finished job of those queues.

-- name: claim_jobs :relaxed
WITH
limited AS (
    SELECT f.scope, f.name, min(
        coalesce(f.concurrency - (
            SELECT count(*) FROM jobs AS r INDEXED BY jobs_running_lease
            WHERE r.status = {running}
              AND CASE f.scope WHEN 'queue' THEN r.queue ELSE r.task END = f.name
        ), 1000000000),
        coalesce(CAST(min(f.rate_count,
            f.tokens + max(0, :now - f.refilled_at) * f.rate_count / f.rate_period
        ) AS INTEGER), 1000000000)
    ) AS room
    FROM flow_limits AS f
    WHERE f.concurrency IS NOT NULL OR f.rate_count IS NOT NULL
),
paused AS (SELECT name FROM flow_limits WHERE scope = 'queue' AND paused),
free AS (
    SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_due
    WHERE status IN {claimable} AND queue IN (:queues) AND run_at <= :now
      AND queue NOT IN (
          SELECT name FROM flow_limits WHERE scope = 'queue'
            AND (paused OR concurrency IS NOT NULL OR rate_count IS NOT NULL)
      )
      AND task NOT IN (
          SELECT name FROM flow_limits WHERE scope = 'task'
            AND (concurrency IS NOT NULL OR rate_count IS NOT NULL)
      )
    ORDER BY priority DESC, run_at, seq
    LIMIT :limit
),
held AS (
    -- CROSS JOIN: the limits drive the loop (SQLite keeps that order), so with none there is
    -- nothing to read.
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task
    FROM limited AS l CROSS JOIN jobs AS j INDEXED BY jobs_due
    WHERE l.scope = 'queue' AND l.name IN (:queues) AND j.queue = l.name
      AND j.status IN {claimable} AND j.run_at <= :now
      AND j.queue NOT IN (SELECT name FROM paused)
    UNION
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task
    FROM limited AS l CROSS JOIN jobs AS j INDEXED BY jobs_due
    WHERE l.scope = 'task' AND j.task = l.name
      AND j.status IN {claimable} AND j.queue IN (:queues) AND j.run_at <= :now
      AND j.queue NOT IN (SELECT name FROM paused)
    ORDER BY 2 DESC, 3, 1
    LIMIT 1000
),
by_task AS (
    SELECT h.*, t.room, row_number() OVER (
        PARTITION BY h.task ORDER BY h.priority DESC, h.run_at, h.seq
    ) AS n
    FROM held AS h LEFT JOIN limited AS t ON t.scope = 'task' AND t.name = h.task
),
by_queue AS (
    SELECT b.seq, b.priority, b.run_at, q.room, row_number() OVER (
        PARTITION BY b.queue ORDER BY b.priority DESC, b.run_at, b.seq
    ) AS n
    FROM by_task AS b LEFT JOIN limited AS q ON q.scope = 'queue' AND q.name = b.queue
    WHERE b.room IS NULL OR b.n <= b.room
)
UPDATE jobs SET status = {running}, attempt = attempt + 1, worker_id = :worker,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now,
    cancel_requested = false, progress = NULL
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, priority, run_at FROM free
        UNION ALL
        SELECT seq, priority, run_at FROM by_queue WHERE room IS NULL OR n <= room
    )
    ORDER BY priority DESC, run_at, seq
    LIMIT :limit
)
RETURNING *;

-- name: claim_spend :relaxed
-- After claim_jobs, in its transaction: each rate bucket of what the worker could claim is
-- refilled to now and spent by the jobs this claim took (this worker's, started at :now).
UPDATE flow_limits SET
    tokens = min(rate_count, tokens + max(0, :now - refilled_at) * rate_count / rate_period) - (
        SELECT count(*) FROM jobs AS j INDEXED BY jobs_running_worker
        WHERE j.worker_id = :worker AND j.status = {running} AND j.started_at = :now
          AND CASE flow_limits.scope WHEN 'queue' THEN j.queue ELSE j.task END = flow_limits.name
    ),
    refilled_at = max(refilled_at, :now)
WHERE rate_count IS NOT NULL AND (scope = 'task' OR name IN (:queues));
