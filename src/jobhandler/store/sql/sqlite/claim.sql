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
--
-- Keyed jobs (a concurrency_key, docs/tenants.md) are in an index of their own, jobs_due_keyed.
-- claim_jobs takes unkeyed jobs as before, and stands aside while a keyed job is due in the
-- queues (one look into that index); claim_keyed then takes them all, in turns (the unit runs
-- it only then: ../../queues.py). In claim_keyed each queue's keys
-- are walked from the one served last (key_cursors), wrapping around, one index seek per key
-- and at most :limit + 16 keys (keys), the queue's unkeyed jobs taking the place of '' in that
-- round; each key gives its first jobs (keyed), ranked n within the key. Jobs are then taken
-- round by round: every key's (and the unkeyed group's) first, then every second, ... (n, pos).
-- A key's room is its key_concurrency minus its jobs processing and the whole tokens of its
-- bucket, per (task, key) and (queue, key); then the task's and queue's own limits apply.

-- name: claim_limits :fragment
-- The CTEs both claims open with: the limits in force (limited) and the paused queues.
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
paused AS (SELECT name FROM flow_limits WHERE scope = 'queue' AND paused);

-- name: claim_jobs :relaxed
WITH
{claim_limits},
free AS (
    SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_due
    WHERE status IN {claimable} AND concurrency_key IS NULL AND queue IN (:queues)
      AND run_at <= :now
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
      AND j.status IN {claimable} AND j.concurrency_key IS NULL AND j.run_at <= :now
      AND j.queue NOT IN (SELECT name FROM paused)
    UNION
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task
    FROM limited AS l CROSS JOIN jobs AS j INDEXED BY jobs_due
    WHERE l.scope = 'task' AND j.task = l.name
      AND j.status IN {claimable} AND j.concurrency_key IS NULL AND j.queue IN (:queues)
      AND j.run_at <= :now
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
  -- With a keyed job due, claim_keyed takes them all, round-robin: evaluated once, first.
  AND NOT EXISTS (
      SELECT 1 FROM jobs INDEXED BY jobs_due_keyed
      WHERE queue IN (:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
        AND run_at <= :now
  )
-- keyed_due: whether a keyed job is due now, for the next claim's choice (../../queues.py).
RETURNING *, EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_due_keyed
    WHERE queue IN (:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
      AND run_at <= :now
) AS keyed_due;

-- name: claim_keyed :relaxed
WITH RECURSIVE
{claim_limits},
key_queues AS (
    -- The claim's queues with a keyed job due: with none, nothing else is read (claim_jobs
    -- takes the unkeyed jobs then).
    SELECT q.value AS queue, coalesce(c.last_key, '') AS after_key
    FROM json_each(json_array(:queues)) AS q LEFT JOIN key_cursors AS c ON c.queue = q.value
    WHERE EXISTS (
        SELECT 1 FROM jobs INDEXED BY jobs_due_keyed
        WHERE queue = q.value AND status IN {claimable} AND concurrency_key IS NOT NULL
          AND run_at <= :now
    ) AND q.value NOT IN (SELECT name FROM paused)
),
gate AS (SELECT 1 FROM key_queues LIMIT 1),
free AS (
    -- CROSS JOIN: the gate drives the loop (SQLite keeps that order), so with no keyed job
    -- due nothing is read; as in held below.
    SELECT seq, priority, run_at, queue FROM gate CROSS JOIN jobs INDEXED BY jobs_due
    WHERE status IN {claimable} AND concurrency_key IS NULL AND queue IN (:queues)
      AND run_at <= :now
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
    -- CROSS JOIN: the gate and the limits drive the loop (SQLite keeps that order), so with
    -- none there is nothing to read.
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task
    FROM gate CROSS JOIN limited AS l CROSS JOIN jobs AS j INDEXED BY jobs_due
    WHERE l.scope = 'queue' AND l.name IN (:queues) AND j.queue = l.name
      AND j.status IN {claimable} AND j.concurrency_key IS NULL AND j.run_at <= :now
      AND j.queue NOT IN (SELECT name FROM paused)
    UNION
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task
    FROM gate CROSS JOIN limited AS l CROSS JOIN jobs AS j INDEXED BY jobs_due
    WHERE l.scope = 'task' AND j.task = l.name
      AND j.status IN {claimable} AND j.concurrency_key IS NULL AND j.queue IN (:queues)
      AND j.run_at <= :now
      AND j.queue NOT IN (SELECT name FROM paused)
    ORDER BY 2 DESC, 3, 1
    LIMIT 1000
),
keys (queue, key, pos, wrapped, stop) AS (
    -- A row at pos 0 is the cursor itself; '' at pos > 0 is the unkeyed jobs' turn, after
    -- which (wrapped) the walk starts again from the first key and stops at the cursor.
    SELECT queue, after_key, 0, 0, after_key FROM key_queues
    UNION ALL
    SELECT k.queue,
        CASE WHEN k.wrapped = 1 OR (k.key = '' AND k.pos > 0) THEN (
            SELECT concurrency_key FROM jobs INDEXED BY jobs_due_keyed
            WHERE queue = k.queue AND status IN {claimable} AND concurrency_key IS NOT NULL
              AND concurrency_key > k.key AND concurrency_key <= k.stop AND run_at <= :now
            ORDER BY concurrency_key LIMIT 1
        ) ELSE coalesce((
            SELECT concurrency_key FROM jobs INDEXED BY jobs_due_keyed
            WHERE queue = k.queue AND status IN {claimable} AND concurrency_key IS NOT NULL
              AND concurrency_key > k.key AND run_at <= :now
            ORDER BY concurrency_key LIMIT 1
        ), '') END,
        k.pos + 1,
        CASE WHEN k.wrapped = 1 OR (k.key = '' AND k.pos > 0) THEN 1 ELSE 0 END,
        k.stop
    FROM keys AS k
    WHERE k.key IS NOT NULL AND k.pos < :limit + 16
),
turns AS MATERIALIZED (SELECT queue, key, pos FROM keys WHERE pos > 0 AND key IS NOT NULL),
keyed AS MATERIALIZED (
    -- Each key's first jobs, up to twice its share of :limit (so keys with fewer jobs leave
    -- their slots to the others): the claim reads at most 2 * :limit rows and one per key,
    -- however long the backlog.
    SELECT j.seq, j.priority, j.run_at, j.queue, j.task, j.concurrency_key AS key, t.pos,
        row_number() OVER (
            PARTITION BY j.queue, j.concurrency_key ORDER BY j.priority DESC, j.run_at, j.seq
        ) AS n
    FROM turns AS t CROSS JOIN jobs AS j
    WHERE t.key <> '' AND j.seq IN (
        SELECT seq FROM jobs INDEXED BY jobs_due_keyed
        WHERE queue = t.queue AND concurrency_key = t.key AND status IN {claimable}
          AND concurrency_key IS NOT NULL AND run_at <= :now
        ORDER BY priority DESC, run_at, seq
        LIMIT (SELECT 2 * :limit / max(1, count(*)) + 1 FROM turns WHERE key <> '')
    )
),
key_rooms AS (
    SELECT g.scope, g.name, g.key, min(
        coalesce(l.key_concurrency - (
            SELECT count(*) FROM jobs AS r INDEXED BY jobs_running_keyed
            WHERE r.status = {running} AND r.concurrency_key = g.key
              AND CASE g.scope WHEN 'queue' THEN r.queue ELSE r.task END = g.name
        ), 1000000000),
        coalesce(CAST(coalesce(min(l.key_rate_count,
            b.tokens + max(0, :now - b.refilled_at) * l.key_rate_count / l.key_rate_period
        ), l.key_rate_count) AS INTEGER), 1000000000)
    ) AS room
    FROM (
        SELECT DISTINCT 'queue' AS scope, queue AS name, key FROM keyed
        UNION SELECT DISTINCT 'task', task, key FROM keyed
    ) AS g
    JOIN flow_limits AS l ON l.scope = g.scope AND l.name = g.name
        AND (l.key_concurrency IS NOT NULL OR l.key_rate_count IS NOT NULL)
    LEFT JOIN key_buckets AS b ON b.scope = g.scope AND b.name = g.name AND b.key = g.key
),
by_task_key AS (
    SELECT k.*, r.room, row_number() OVER (
        PARTITION BY k.task, k.key ORDER BY k.n, k.pos, k.priority DESC, k.run_at, k.seq
    ) AS m
    FROM keyed AS k
    LEFT JOIN key_rooms AS r ON r.scope = 'task' AND r.name = k.task AND r.key = k.key
),
by_queue_key AS (
    SELECT b.seq, b.priority, b.run_at, b.queue, b.task, b.n, b.pos, r.room, row_number() OVER (
        PARTITION BY b.queue, b.key ORDER BY b.n, b.seq
    ) AS m
    FROM by_task_key AS b
    LEFT JOIN key_rooms AS r ON r.scope = 'queue' AND r.name = b.queue AND r.key = b.key
    WHERE b.room IS NULL OR b.m <= b.room
),
ruled AS (
    -- What a limit applies to: the held unkeyed jobs (in the unkeyed turn of their queue)
    -- and the keyed ones that fit their keys' limits.
    SELECT h.seq, h.priority, h.run_at, h.queue, h.task,
        row_number() OVER (ORDER BY h.priority DESC, h.run_at, h.seq) AS n,
        coalesce(u.pos, 0) AS pos
    FROM held AS h LEFT JOIN turns AS u ON u.queue = h.queue AND u.key = ''
    UNION ALL
    SELECT seq, priority, run_at, queue, task, n, pos FROM by_queue_key
    WHERE room IS NULL OR m <= room
),
by_task AS (
    SELECT r.*, t.room, row_number() OVER (
        PARTITION BY r.task ORDER BY r.n, r.pos, r.priority DESC, r.run_at, r.seq
    ) AS m
    FROM ruled AS r LEFT JOIN limited AS t ON t.scope = 'task' AND t.name = r.task
),
by_queue AS (
    SELECT b.seq, b.priority, b.run_at, b.n, b.pos, q.room, row_number() OVER (
        PARTITION BY b.queue ORDER BY b.n, b.pos, b.priority DESC, b.run_at, b.seq
    ) AS m
    FROM by_task AS b LEFT JOIN limited AS q ON q.scope = 'queue' AND q.name = b.queue
    WHERE b.room IS NULL OR b.m <= b.room
)
UPDATE jobs SET status = {running}, attempt = attempt + 1, worker_id = :worker,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now,
    cancel_requested = false, progress = NULL
WHERE seq IN (
    SELECT seq FROM (
        SELECT f.seq, f.priority, f.run_at,
            row_number() OVER (ORDER BY f.priority DESC, f.run_at, f.seq) AS n,
            coalesce(u.pos, 0) AS pos
        FROM free AS f LEFT JOIN turns AS u ON u.queue = f.queue AND u.key = ''
        UNION ALL
        SELECT seq, priority, run_at, n, pos FROM by_queue WHERE room IS NULL OR m <= room
    )
    ORDER BY n, pos, priority DESC, run_at, seq
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

-- name: claim_key_spend :relaxed
-- After claim_jobs: the buckets of the keys this claim took jobs of, under a key_rate_limit of
-- their queue or task, refilled to now and spent (a first take creates the key's bucket).
WITH
gate AS (SELECT 1 FROM flow_limits WHERE key_rate_count IS NOT NULL LIMIT 1),
taken AS (
    -- CROSS JOIN: the gate drives the loop, so with no key rate nothing more is read.
    SELECT j.queue, j.task, j.concurrency_key AS key
    FROM gate CROSS JOIN jobs AS j INDEXED BY jobs_running_worker
    WHERE j.worker_id = :worker AND j.status = {running} AND j.started_at = :now
      AND j.concurrency_key IS NOT NULL
),
spent AS (
    SELECT 'queue' AS scope, queue AS name, key, count(*) AS n FROM taken GROUP BY queue, key
    UNION ALL
    SELECT 'task', task, key, count(*) FROM taken GROUP BY task, key
)
INSERT INTO key_buckets (scope, name, key, tokens, refilled_at)
SELECT s.scope, s.name, s.key, coalesce(min(l.key_rate_count,
        b.tokens + max(0, :now - b.refilled_at) * l.key_rate_count / l.key_rate_period
    ), l.key_rate_count) - s.n, :now
FROM spent AS s
JOIN flow_limits AS l ON l.scope = s.scope AND l.name = s.name AND l.key_rate_count IS NOT NULL
LEFT JOIN key_buckets AS b ON b.scope = s.scope AND b.name = s.name AND b.key = s.key
WHERE true
ON CONFLICT (scope, name, key) DO UPDATE SET
    tokens = excluded.tokens, refilled_at = max(key_buckets.refilled_at, excluded.refilled_at);

-- name: claim_cursor :relaxed
-- After claim_jobs: each queue's round-robin moves on to the turn this claim took last (its
-- jobs ranked within their key, turns in the order of the walk: keys after the cursor, the
-- unkeyed jobs (''), then the keys up to the cursor). Only while keyed jobs are due.
INSERT INTO key_cursors (queue, last_key)
SELECT queue, key FROM (
    SELECT t.queue, t.key, row_number() OVER (
        PARTITION BY t.queue ORDER BY t.n DESC, t.band DESC, t.key DESC
    ) AS last
    FROM (
        SELECT j.queue, coalesce(j.concurrency_key, '') AS key,
            row_number() OVER (
                PARTITION BY j.queue, j.concurrency_key ORDER BY j.priority DESC, j.run_at, j.seq
            ) AS n,
            CASE WHEN j.concurrency_key IS NULL THEN 1
                WHEN j.concurrency_key > coalesce(c.last_key, '') THEN 0 ELSE 2 END AS band
        FROM (
            SELECT 1 FROM jobs INDEXED BY jobs_due_keyed
            WHERE queue IN (:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
            LIMIT 1
        ) AS gate
        CROSS JOIN jobs AS j INDEXED BY jobs_running_worker
        LEFT JOIN key_cursors AS c ON c.queue = j.queue
        WHERE j.worker_id = :worker AND j.status = {running} AND j.started_at = :now
          AND j.queue IN (:queues)
    ) AS t
) WHERE last = 1
ON CONFLICT (queue) DO UPDATE SET last_key = excluded.last_key;

-- name: keyed_due :relaxed
-- Last in the claim's unit: whether a keyed job is due in these queues (see ../../queues.py).
SELECT EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_due_keyed
    WHERE queue IN (:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
      AND run_at <= :now
) AS due;
