-- The claim, with flow control (see ../../queues.py).
--
-- Jobs of queues and tasks with no limit are picked as before: through the partial index,
-- locking what is picked and skipping rows another claimer holds (free). Jobs under a limit
-- (held) are picked only when a limit row exists, so the common case reads nothing more.
-- Each limit allows `room` more now: its concurrency minus the jobs of it processing, and the
-- whole tokens of its rate bucket, which the same statement spends (spent). A job under a task
-- and a queue limit must fit both. A paused queue gives nothing.
--
-- Under READ COMMITTED concurrent claimers would each count the same running jobs, so a claim
-- that can take limited jobs first takes claim_lock in its transaction (one advisory lock:
-- limited claims run one at a time, in a fresh snapshot each); claims of unlimited queues
-- never wait for it.

-- name: claim_lock :relaxed
SELECT pg_advisory_xact_lock(7411510) FROM (
    SELECT 1 FROM flow_limits
    WHERE (concurrency IS NOT NULL OR rate_count IS NOT NULL)
      AND (scope = 'task' OR name = ANY(:queues))
    LIMIT 1
) AS any_limit;

-- name: claim_jobs :relaxed
WITH
limited AS MATERIALIZED (
    SELECT f.scope, f.name, f.rate_count, least(
        coalesce(f.concurrency - (
            SELECT count(*) FROM jobs AS r
            WHERE r.status = {running}
              AND CASE f.scope WHEN 'queue' THEN r.queue ELSE r.task END = f.name
        ), 1000000000),
        coalesce(floor(least(f.rate_count,
            f.tokens + greatest(0, :now - f.refilled_at) * f.rate_count / f.rate_period
        ))::bigint, 1000000000)
    ) AS room
    FROM flow_limits AS f
    WHERE f.concurrency IS NOT NULL OR f.rate_count IS NOT NULL
),
paused AS MATERIALIZED (SELECT name FROM flow_limits WHERE scope = 'queue' AND paused),
free AS (
    -- Queue by queue, so each walks jobs_due in its order and stops at :limit; over
    -- queue = ANY(...) the planner reads and sorts every row of the queues instead.
    SELECT j.seq, j.priority, j.run_at
    FROM unnest(CAST(:queues AS text[])) AS q(name)
    CROSS JOIN LATERAL (
        SELECT seq, priority, run_at FROM jobs
        WHERE status IN {claimable} AND queue = q.name AND run_at <= :now
          AND task NOT IN (SELECT name FROM limited WHERE scope = 'task')
        ORDER BY priority DESC, run_at, seq
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE q.name NOT IN (SELECT name FROM paused)
      AND q.name NOT IN (SELECT name FROM limited WHERE scope = 'queue')
),
held AS (
    SELECT seq, priority, run_at, queue, task FROM jobs
    WHERE status IN {claimable} AND run_at <= :now
      AND queue = ANY(:queues) AND queue NOT IN (SELECT name FROM paused)
      AND (queue IN (SELECT name FROM limited WHERE scope = 'queue')
           OR task IN (SELECT name FROM limited WHERE scope = 'task'))
      AND EXISTS (SELECT 1 FROM limited)
    ORDER BY priority DESC, run_at, seq
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
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
),
picked AS (
    SELECT seq FROM (
        SELECT seq, priority, run_at FROM free
        UNION ALL
        SELECT seq, priority, run_at FROM by_queue WHERE room IS NULL OR n <= room
    ) AS both_ways
    ORDER BY priority DESC, run_at, seq
    LIMIT :limit
),
taken AS (
    UPDATE jobs SET status = {running}, attempt = attempt + 1, worker_id = :worker,
        lease_expires_at = :lease_until, started_at = :now, updated_at = :now,
        cancel_requested = false, progress = NULL
    FROM picked WHERE jobs.seq = picked.seq
    RETURNING jobs.*
),
spent AS (
    UPDATE flow_limits AS f SET
        tokens = least(f.rate_count,
            f.tokens + greatest(0, :now - f.refilled_at) * f.rate_count / f.rate_period
        ) - (
            SELECT count(*) FROM taken AS t
            WHERE CASE f.scope WHEN 'queue' THEN t.queue ELSE t.task END = f.name
        ),
        refilled_at = greatest(f.refilled_at, :now)
    FROM limited AS l
    WHERE l.scope = f.scope AND l.name = f.name AND l.rate_count IS NOT NULL
      AND (f.scope = 'task' OR f.name = ANY(:queues))
)
SELECT * FROM taken;
