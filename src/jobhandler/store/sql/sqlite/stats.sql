-- SQLite's own queries for counts and throughput (see ../stats.sql).

-- name: job_counts
-- The counters migration 009's triggers keep, a row per queue, as (queue, status, n) rows.
SELECT queue, 'queued' AS status, queued AS n, 1 AS pieces FROM queue_counts
UNION ALL SELECT queue, 'scheduled', scheduled, 1 FROM queue_counts
UNION ALL SELECT queue, 'processing', processing, 1 FROM queue_counts
UNION ALL SELECT queue, 'completed', completed, 1 FROM queue_counts
UNION ALL SELECT queue, 'failed', failed, 1 FROM queue_counts
UNION ALL SELECT queue, 'cancelled', cancelled, 1 FROM queue_counts
UNION ALL SELECT queue, 'waiting', waiting, 1 FROM queue_counts;

-- name: oldest_waiting
-- When a queue's longest-waiting job became due: the smallest run_at among its waiting jobs,
-- found by a seek into the claim index for each distinct priority (a skip scan), however big
-- the backlog. INDEXED BY: the planner would otherwise walk jobs_queue_seq.
WITH RECURSIVE levels (priority) AS (
    SELECT (SELECT priority FROM jobs INDEXED BY jobs_due
            WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
            ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM jobs INDEXED BY jobs_due
            WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
              AND priority < levels.priority
            ORDER BY priority DESC LIMIT 1)
    FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(oldest) AS oldest FROM (
    SELECT min((SELECT run_at FROM jobs INDEXED BY jobs_due
                WHERE status IN {claimable} AND concurrency_key IS NULL AND queue = :queue
                  AND priority = levels.priority
                ORDER BY run_at LIMIT 1)) AS oldest
    FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    -- keyed jobs (migration 015): their own index, read whole for the queue
    SELECT min(run_at) FROM jobs INDEXED BY jobs_due_keyed
    WHERE status IN {claimable} AND concurrency_key IS NOT NULL AND queue = :queue
) AS both_kinds;

-- name: throughput
-- From the index on (finished_at, status) alone.
SELECT CAST(finished_at / 60 AS INTEGER) * 60 AS minute, status, count(*) AS n
FROM jobs WHERE finished_at >= :since AND finished_at IS NOT NULL
GROUP BY 1, 2 ORDER BY 1;
