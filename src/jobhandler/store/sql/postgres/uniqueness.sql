-- PostgreSQL's own queries for unique keys (see ../uniqueness.sql).

-- name: free_windows
-- Windows of these keys that expired, or whose job was deleted, are free to take again.
DELETE FROM unique_windows WHERE key = ANY(:keys)
  AND (expires_at <= :now OR NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = unique_windows.job_id));

-- name: drop_unclaimed
-- After insert_jobs, in its transaction: a windowed job that did not take its key (claim_window)
-- is taken out again before anyone could see it.
DELETE FROM jobs WHERE id = ANY(:ids) AND unique_until IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM unique_windows WHERE key = jobs.unique_key AND job_id = jobs.id
  );

-- name: live_holders
-- For each key, the newest job that held it while live: a duplicate submit answers with it.
SELECT * FROM jobs WHERE seq IN (
    SELECT max(seq) FROM jobs WHERE unique_key = ANY(:keys) AND unique_until IS NULL
    GROUP BY unique_key
);

-- name: window_holders
SELECT jobs.* FROM unique_windows JOIN jobs ON jobs.id = unique_windows.job_id
WHERE unique_windows.key = ANY(:keys);

-- name: jobs_by_id
SELECT * FROM jobs WHERE id = ANY(:ids);

-- name: held_keys
-- After a retry's write, in its transaction: which of these jobs it left finished because
-- another job holds their unique key, and that job (see ../../uniqueness.py).
SELECT jobs.id, jobs.status, jobs.unique_key, holder.id AS holder
FROM jobs JOIN jobs AS holder ON {key_held}
WHERE jobs.id = ANY(:ids) AND jobs.status IN {retryable};

-- name: debounce
-- After insert_jobs, in its transaction: the waiting job holding a debounced submit's live key
-- takes its payload, and its start, capped at the holder's first submit plus max_wait
-- (see ../../uniqueness.py).
UPDATE jobs SET payload = :payload, run_at = starts.at, updated_at = :now,
    status = CASE WHEN starts.at > :now THEN {scheduled} ELSE {queued} END
FROM (
    SELECT id, CASE WHEN :max_wait::float8 IS NULL THEN :run_at::float8
        ELSE LEAST(:run_at::float8, created_at + :max_wait::float8) END AS at
    FROM jobs WHERE unique_key = :key AND unique_until IS NULL AND id <> :id
      AND status IN {claimable}
) AS starts
WHERE jobs.id = starts.id AND jobs.status IN {claimable};
