-- Attempt history and job counts, both kept by triggers: in the transaction of the statement
-- that moves a job, whichever operation wrote it (a claim, a finish or the rescuer's, a cancel,
-- a retry, a submit, an import, a prune), written once here rather than in each operation.

-- Attempt history. A job's row always shows its last run (attempt, worker_id, started_at,
-- error, traceback; finished_at or, for a run that ended in a retry, updated_at); the run
-- before it is kept here once something is about to overwrite it: the next claim, a user's
-- retry or cancel. So a job that runs once (the common case) writes no history at all, and a
-- retried one writes each earlier run once, in the transaction of the transition that moves
-- it on. ``outcome`` is the status the run left the job in (scheduled: retried; queued:
-- handed back at shutdown). Deleted with the job by jobhandler_count_deleted below, a
-- statement at a time (a foreign key would cost a locking lookup of the job per insert).
CREATE TABLE job_attempts (
    job_id text NOT NULL,
    attempt integer NOT NULL,
    worker_id text,
    started_at double precision,
    finished_at double precision NOT NULL,
    outcome text NOT NULL,
    error text,
    traceback text,
    PRIMARY KEY (job_id, attempt)
);

-- How many jobs each queue holds in each status, as deltas: each statement that moves jobs
-- appends one row per (queue, status) it changed (statement-level triggers over transition
-- tables), so concurrent claims and finishes never wait on a shared counter row. A reader sums
-- them; compact_counts folds them back into one row per (queue, status) now and then.
CREATE TABLE job_counts (
    queue text NOT NULL,
    status text NOT NULL,
    n bigint NOT NULL
);
-- Each compaction leaves the deltas it folded as dead rows, which every read would scan until
-- a vacuum: vacuum the table once a few thousand have piled up, whatever its size.
ALTER TABLE job_counts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);

INSERT INTO job_counts (queue, status, n) SELECT queue, status, count(*) FROM jobs
GROUP BY queue, status;

CREATE FUNCTION jobhandler_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, status, n)
    SELECT queue, status, count(*) FROM new_jobs GROUP BY queue, status;
    RETURN NULL;
END $$;

CREATE FUNCTION jobhandler_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, status, n)
    SELECT queue, status, -count(*) FROM old_jobs GROUP BY queue, status;
    DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM old_jobs);
    RETURN NULL;
END $$;

CREATE FUNCTION jobhandler_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts (queue, status, n)
    SELECT queue, status, sum(d) FROM (
        SELECT queue, status, 1 AS d FROM new_jobs
        UNION ALL
        SELECT queue, status, -1 AS d FROM old_jobs
    ) AS moved
    GROUP BY queue, status HAVING sum(d) <> 0;
    -- A job whose last run is about to be overwritten (claimed again, retried or cancelled
    -- by a user): that run joins the history. DO NOTHING: a user retry keeps the run, then
    -- the claim after it finds it kept already.
    INSERT INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback)
    SELECT o.id, o.attempt, o.worker_id, o.started_at, coalesce(o.finished_at, o.updated_at),
        o.status, o.error, o.traceback
    FROM old_jobs AS o JOIN new_jobs AS n ON n.seq = o.seq
    WHERE o.attempt > 0 AND o.status <> 'processing' AND n.status <> o.status
    ON CONFLICT (job_id, attempt) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobhandler_count_inserted();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobhandler_count_deleted();
-- PostgreSQL allows no column list on a trigger with transition tables: every UPDATE of jobs
-- runs it, and one that moves no job between statuses (a heartbeat, progress) adds nothing.
CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobhandler_count_updated();

-- Finished jobs by time and status: the throughput chart reads only this index, and pruning
-- (oldest finished first) uses it as before.
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, status) WHERE finished_at IS NOT NULL;

-- The live feed polls for jobs changed since a watermark.
CREATE INDEX jobs_updated ON jobs (updated_at);
