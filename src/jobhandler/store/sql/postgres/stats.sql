-- PostgreSQL's own queries for counts and throughput (see ../stats.sql).

-- name: job_counts
-- The deltas migration 009's triggers append, summed (``pieces``: how many, to know when to
-- compact them).
SELECT queue, status, sum(n) AS n, count(*) AS pieces FROM job_counts GROUP BY queue, status;

-- name: oldest_waiting
-- When a queue's longest-waiting job became due: the smallest run_at among its waiting jobs,
-- found by a seek into the claim index for each distinct priority (a skip scan), however big
-- the backlog (unkeyed; keyed jobs have their own index).
WITH RECURSIVE levels (priority) AS (
    SELECT (SELECT priority FROM jobs
            WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
            ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM jobs
            WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
              AND priority < levels.priority
            ORDER BY priority DESC LIMIT 1)
    FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(oldest) AS oldest FROM (
    SELECT min((SELECT run_at FROM jobs
                WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
                  AND priority = levels.priority
                ORDER BY run_at LIMIT 1)) AS oldest
    FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    -- keyed jobs (migration 015): their own index, read whole for the queue
    SELECT min(run_at) FROM jobs
    WHERE status IN {claimable} AND concurrency_key IS NOT NULL AND queue = :queue
) AS both_kinds;

-- name: throughput
-- From the index on (finished_at, status) alone.
SELECT floor(finished_at / 60)::bigint * 60 AS minute, status, count(*) AS n
FROM jobs WHERE finished_at >= :since AND finished_at IS NOT NULL
GROUP BY 1, 2 ORDER BY 1;

-- name: compact_counts
-- Fold the counters' deltas into one row per (queue, status). One compactor at a time (the
-- others skip it, never wait; the lock's key is "jobcount" in ASCII); a delta appended meanwhile
-- is kept for the next one.
WITH turn AS (SELECT pg_try_advisory_xact_lock(7669456869646495348) AS mine),
gone AS (
    DELETE FROM job_counts WHERE (SELECT mine FROM turn) RETURNING queue, status, n
)
INSERT INTO job_counts (queue, status, n)
SELECT queue, status, sum(n) FROM gone GROUP BY queue, status HAVING sum(n) <> 0;
