-- PostgreSQL's own schedule queries (see ../schedules.sql).

-- name: notify_fired
-- After insert_fired_job, in its transaction: wake the workers when a job was made.
SELECT pg_notify({submit_channel}, '') FROM schedules WHERE name = :name AND last_job_id = :id;
