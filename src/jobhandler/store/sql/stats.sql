-- Counts, attempt history and throughput (store/stats.py, store/attempts.py); both dialects.

-- name: job_attempts
SELECT * FROM job_attempts WHERE job_id = :id ORDER BY attempt;
