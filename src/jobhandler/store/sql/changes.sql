-- The live feed (live.py): jobs changed since a watermark, read through jobs_updated.

-- name: changed_jobs
SELECT * FROM jobs WHERE updated_at > :since ORDER BY updated_at LIMIT :limit;
