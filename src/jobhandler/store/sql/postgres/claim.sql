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
-- bucket (key_buckets, spent here), per (task, key) and (queue, key); then the task's and
-- queue's own limits apply. A claim that can take keyed jobs under a key limit takes claim_lock
-- too, so each counts what the others took; the claims of unkeyed queues never wait for it.

-- name: claim_unkeyed :fragment
-- The CTEs both claims open with: the limits in force (limited, paused), and the due unkeyed
-- jobs, free of any limit or under one (held).
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
    SELECT j.seq, j.priority, j.run_at, q.name AS queue
    FROM unnest(CAST(:queues AS text[])) AS q(name)
    CROSS JOIN LATERAL (
        SELECT seq, priority, run_at FROM jobs
        WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = q.name
          AND run_at <= :now
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
    WHERE status IN {claimable} AND concurrency_key IS NULL AND run_at <= :now
      AND queue = ANY(:queues) AND queue NOT IN (SELECT name FROM paused)
      AND (queue IN (SELECT name FROM limited WHERE scope = 'queue')
           OR task IN (SELECT name FROM limited WHERE scope = 'task'))
      AND EXISTS (SELECT 1 FROM limited)
    ORDER BY priority DESC, run_at, seq
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
);

-- name: claim_lock :relaxed
-- First in the claim's unit, and it answers whether a keyed job is due in these queues now
-- (due: see ../../queues.py; PostgreSQL asks here, to send no statement more).
SELECT EXISTS (
    SELECT 1 FROM jobs
    WHERE queue = ANY(:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
      AND run_at <= :now
) AS due, (
    SELECT pg_advisory_xact_lock(7411510) FROM (
        SELECT 1 FROM flow_limits
        WHERE (scope = 'task' OR name = ANY(:queues))
          AND (concurrency IS NOT NULL OR rate_count IS NOT NULL
               OR ((key_concurrency IS NOT NULL OR key_rate_count IS NOT NULL) AND EXISTS (
                   SELECT 1 FROM jobs
                   WHERE queue = ANY(:queues) AND status IN {claimable}
                     AND concurrency_key IS NOT NULL AND run_at <= :now
               )))
        LIMIT 1
    ) AS any_limit
) AS locked;

-- name: claim_jobs :relaxed
WITH
{claim_unkeyed},
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
    -- With a keyed job due, claim_keyed takes them all, round-robin (a one-time filter).
    WHERE NOT EXISTS (
        SELECT 1 FROM jobs
        WHERE queue = ANY(:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
          AND run_at <= :now
    )
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

-- name: claim_keyed :relaxed
WITH RECURSIVE
{claim_unkeyed},
key_queues AS MATERIALIZED (
    SELECT q.name AS queue, coalesce(c.last_key, '') AS after_key
    FROM unnest(CAST(:queues AS text[])) AS q(name)
    LEFT JOIN key_cursors AS c ON c.queue = q.name
    WHERE EXISTS (
        SELECT 1 FROM jobs
        WHERE queue = q.name AND status IN {claimable} AND concurrency_key IS NOT NULL
          AND run_at <= :now
    ) AND q.name NOT IN (SELECT name FROM paused)
),
keys (queue, key, pos, wrapped, stop) AS (
    -- A row at pos 0 is the cursor itself; '' at pos > 0 is the unkeyed jobs' turn, after
    -- which (wrapped) the walk starts again from the first key and stops at the cursor.
    SELECT queue, after_key, 0, 0, after_key FROM key_queues
    UNION ALL
    SELECT k.queue,
        CASE WHEN k.wrapped = 1 OR (k.key = '' AND k.pos > 0) THEN (
            SELECT concurrency_key FROM jobs
            WHERE queue = k.queue AND status IN {claimable} AND concurrency_key IS NOT NULL
              AND concurrency_key > k.key AND concurrency_key <= k.stop AND run_at <= :now
            ORDER BY concurrency_key LIMIT 1
        ) ELSE coalesce((
            SELECT concurrency_key FROM jobs
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
share AS MATERIALIZED (
    SELECT 2 * CAST(:limit AS bigint) / greatest(1, count(*)) + 1 AS n
    FROM turns WHERE key <> ''
),
keyed AS MATERIALIZED (
    -- Each key's first jobs, up to twice its share of :limit (so keys with fewer jobs leave
    -- their slots to the others): the claim reads at most 2 * :limit rows and one per key,
    -- however long the backlog.
    SELECT j.seq, j.priority, j.run_at, t.queue, j.task, t.key, t.pos, row_number() OVER (
            PARTITION BY t.queue, t.key ORDER BY j.priority DESC, j.run_at, j.seq
        ) AS n
    FROM turns AS t CROSS JOIN share AS s CROSS JOIN LATERAL (
        SELECT seq, priority, run_at, task FROM jobs
        WHERE queue = t.queue AND concurrency_key = t.key AND status IN {claimable}
          AND concurrency_key IS NOT NULL AND run_at <= :now
        ORDER BY priority DESC, run_at, seq
        LIMIT s.n
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE t.key <> ''
),
key_rooms AS MATERIALIZED (
    SELECT g.scope, g.name, g.key, least(
        coalesce(l.key_concurrency - (
            SELECT count(*) FROM jobs AS r
            WHERE r.status = {running} AND r.concurrency_key = g.key
              AND CASE g.scope WHEN 'queue' THEN r.queue ELSE r.task END = g.name
        ), 1000000000),
        coalesce(floor(least(l.key_rate_count, coalesce(
            b.tokens + greatest(0, :now - b.refilled_at) * l.key_rate_count / l.key_rate_period,
            l.key_rate_count
        )))::bigint, 1000000000)
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
    SELECT b.seq, b.priority, b.run_at, b.queue, b.task, b.key, b.n, b.pos, r.room,
        row_number() OVER (PARTITION BY b.queue, b.key ORDER BY b.n, b.seq) AS m
    FROM by_task_key AS b
    LEFT JOIN key_rooms AS r ON r.scope = 'queue' AND r.name = b.queue AND r.key = b.key
    WHERE b.room IS NULL OR b.m <= b.room
),
ruled AS (
    -- What a limit applies to: the held unkeyed jobs (in the unkeyed turn of their queue)
    -- and the keyed ones that fit their keys' limits.
    SELECT h.seq, h.priority, h.run_at, h.queue, h.task, NULL AS key,
        row_number() OVER (ORDER BY h.priority DESC, h.run_at, h.seq) AS n,
        coalesce(u.pos, 0) AS pos
    FROM held AS h LEFT JOIN turns AS u ON u.queue = h.queue AND u.key = ''
    UNION ALL
    SELECT seq, priority, run_at, queue, task, key, n, pos FROM by_queue_key
    WHERE room IS NULL OR m <= room
),
by_task AS (
    SELECT r.*, t.room, row_number() OVER (
        PARTITION BY r.task ORDER BY r.n, r.pos, r.priority DESC, r.run_at, r.seq
    ) AS m
    FROM ruled AS r LEFT JOIN limited AS t ON t.scope = 'task' AND t.name = r.task
),
by_queue AS (
    SELECT b.seq, b.priority, b.run_at, b.queue, b.key, b.n, b.pos, q.room, row_number() OVER (
        PARTITION BY b.queue ORDER BY b.n, b.pos, b.priority DESC, b.run_at, b.seq
    ) AS m
    FROM by_task AS b LEFT JOIN limited AS q ON q.scope = 'queue' AND q.name = b.queue
    WHERE b.room IS NULL OR b.m <= b.room
),
picked AS MATERIALIZED (
    SELECT seq, queue, key, n, pos FROM (
        SELECT f.seq, f.priority, f.run_at, f.queue, NULL AS key,
            row_number() OVER (ORDER BY f.priority DESC, f.run_at, f.seq) AS n,
            coalesce(u.pos, 0) AS pos
        FROM free AS f LEFT JOIN turns AS u ON u.queue = f.queue AND u.key = ''
        UNION ALL
        SELECT seq, priority, run_at, queue, key, n, pos FROM by_queue
        WHERE room IS NULL OR m <= room
    ) AS both_ways
    -- Only with a keyed job due, and when claim_jobs took nothing (a one-time filter; in a
    -- snapshot of its own, a keyed job may have come since claim_jobs looked). What it took
    -- is what this transaction wrote (xmin): another claim by this worker at the same :now
    -- (a test's clock, a coarse one) is not this one.
    WHERE EXISTS (
        SELECT 1 FROM jobs
        WHERE queue = ANY(:queues) AND status IN {claimable} AND concurrency_key IS NOT NULL
          AND run_at <= :now
    ) AND NOT EXISTS (
        SELECT 1 FROM jobs
        WHERE worker_id = :worker AND status = {running} AND started_at = :now
          AND xmin::text::bigint = mod(txid_current_if_assigned(), 4294967296)
    )
    ORDER BY n, pos, priority DESC, run_at, seq
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
      AND (f.scope = 'task' OR f.name = ANY(:queues)) AND EXISTS (SELECT 1 FROM taken)
),
key_spent AS (
    -- The buckets of the keys taken under a key_rate_limit (a first take creates one).
    INSERT INTO key_buckets (scope, name, key, tokens, refilled_at)
    SELECT s.scope, s.name, s.key, least(l.key_rate_count, coalesce(
            b.tokens + greatest(0, :now - b.refilled_at) * l.key_rate_count / l.key_rate_period,
            l.key_rate_count
        )) - s.n, :now
    FROM (
        SELECT 'queue' AS scope, queue AS name, concurrency_key AS key, count(*) AS n
        FROM taken WHERE concurrency_key IS NOT NULL GROUP BY queue, concurrency_key
        UNION ALL
        SELECT 'task', task, concurrency_key, count(*)
        FROM taken WHERE concurrency_key IS NOT NULL GROUP BY task, concurrency_key
    ) AS s
    JOIN flow_limits AS l ON l.scope = s.scope AND l.name = s.name
        AND l.key_rate_count IS NOT NULL
    LEFT JOIN key_buckets AS b ON b.scope = s.scope AND b.name = s.name AND b.key = s.key
    ON CONFLICT (scope, name, key) DO UPDATE SET
        tokens = excluded.tokens,
        refilled_at = greatest(key_buckets.refilled_at, excluded.refilled_at)
),
moved AS (
    -- Each queue's round-robin moves on to the turn this claim took last.
    INSERT INTO key_cursors (queue, last_key)
    SELECT DISTINCT ON (queue) queue, coalesce(key, '') FROM picked
    WHERE queue IN (SELECT queue FROM key_queues)
    ORDER BY queue, n DESC, pos DESC
    ON CONFLICT (queue) DO UPDATE SET last_key = excluded.last_key
)
SELECT * FROM taken;
