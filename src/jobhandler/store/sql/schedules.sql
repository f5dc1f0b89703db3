-- Periodic schedules (store/schedules.py). next_due moves only by compare-and-set on the value
-- the scheduler read, so two schedulers (leaders overlapping) cannot both act on one due time.

-- name: sync_schedule :when_full
-- A declared schedule: new, or updated keeping its pause state; its next due time is kept
-- unless its timing (cron, every, time zone) changed.
INSERT INTO schedules (name, task, cron, every, timezone, payload, missed, next_due, updated_at)
VALUES (:name, :task, :cron, :every, :timezone, :payload, :missed, :next_due, :now)
ON CONFLICT (name) DO UPDATE SET
    next_due = CASE
        WHEN coalesce(schedules.cron, '') = coalesce(excluded.cron, '')
         AND coalesce(schedules.every, 0) = coalesce(excluded.every, 0)
         AND schedules.timezone = excluded.timezone
        THEN schedules.next_due ELSE excluded.next_due END,
    task = excluded.task, cron = excluded.cron, every = excluded.every,
    timezone = excluded.timezone, payload = excluded.payload, missed = excluded.missed,
    updated_at = excluded.updated_at;

-- name: list_schedules
SELECT * FROM schedules;

-- name: fire_schedule
-- The compare-and-set: only from the next due time the scheduler read, never while paused,
-- and only to a due time after the last one run. :id (the new job's, fresh for every call)
-- marks the row so that the insert below happens only if this update did.
UPDATE schedules SET next_due = :next_due, last_due = :run_at, last_job_id = :id,
    updated_at = :now
WHERE name = :name AND next_due = :expected AND NOT paused
  AND (last_due IS NULL OR last_due < :run_at);

-- name: insert_fired_job
INSERT INTO jobs ({new_columns}) SELECT {new_values}
WHERE EXISTS (SELECT 1 FROM schedules WHERE name = :name AND last_job_id = :id);

-- name: advance_schedule :when_full
-- Past a due time without a job: paused, or a missed run the policy skips.
UPDATE schedules SET next_due = :next_due, updated_at = :now
WHERE name = :name AND next_due = :expected;

-- name: pause_schedule :when_full
UPDATE schedules SET paused = :paused, updated_at = :now WHERE name = :name
RETURNING *;
