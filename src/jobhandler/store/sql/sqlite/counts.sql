-- SQLite's count of inserted jobs (Resource.counted): once per insert statement, by queue
-- and status, where a row-level trigger (jobs_count_insert, dropped by 012) wrote an UPSERT per
-- job. Updates and deletes are still counted by triggers (009). A job is found by id, so one a
-- held unique key made the insert skip is not counted. :ids holds each id once (a join, which
-- costs less than IN (SELECT ...) with its temporary table, would count a repeated id twice).
-- WHERE true: SQLite's rule for an INSERT ... SELECT with ON CONFLICT to parse as an upsert.

-- name: count_inserted
INSERT INTO queue_counts (
    queue, queued, scheduled, processing, completed, failed, cancelled, waiting
)
SELECT queue, sum(status = 'queued'), sum(status = 'scheduled'), sum(status = 'processing'),
    sum(status = 'completed'), sum(status = 'failed'), sum(status = 'cancelled'),
    sum(status = 'waiting')
FROM json_each(:ids) AS new JOIN jobs ON jobs.id = new.value WHERE true GROUP BY queue
ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
    scheduled = scheduled + excluded.scheduled, processing = processing + excluded.processing,
    completed = completed + excluded.completed, failed = failed + excluded.failed,
    cancelled = cancelled + excluded.cancelled, waiting = waiting + excluded.waiting;

-- name: uncount_present
-- Before an insert that may skip these ids: the jobs they name already, taken off, since
-- count_inserted after it finds them again (a skipped job's id may be its key's holder's).
INSERT INTO queue_counts (
    queue, queued, scheduled, processing, completed, failed, cancelled, waiting
)
SELECT queue, -sum(status = 'queued'), -sum(status = 'scheduled'), -sum(status = 'processing'),
    -sum(status = 'completed'), -sum(status = 'failed'), -sum(status = 'cancelled'),
    -sum(status = 'waiting')
FROM json_each(:ids) AS old JOIN jobs ON jobs.id = old.value WHERE true GROUP BY queue
ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
    scheduled = scheduled + excluded.scheduled, processing = processing + excluded.processing,
    completed = completed + excluded.completed, failed = failed + excluded.failed,
    cancelled = cancelled + excluded.cancelled, waiting = waiting + excluded.waiting;

-- name: count_added
-- A submit whose insert cannot skip a row (no live unique key among its jobs: any other
-- conflict fails the whole unit) adds exactly the jobs it made: their numbers per queue come as
-- values, one row per queue, where count_inserted would find each job again by id (an index
-- lookup per job, and half the store's CPU of a one-job submit's statements).
INSERT INTO queue_counts (
    queue, queued, scheduled, processing, completed, failed, cancelled, waiting
)
VALUES (:queue, :queued, :scheduled, 0, 0, 0, 0, :waiting)
ON CONFLICT (queue) DO UPDATE SET queued = queued + excluded.queued,
    scheduled = scheduled + excluded.scheduled, waiting = waiting + excluded.waiting;
