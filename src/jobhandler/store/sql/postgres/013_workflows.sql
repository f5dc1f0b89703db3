-- Workflows: jobs that run after other jobs (see ../sqlite/013_workflows.sql for the design).
--
-- Fan-in is a count of unsettled parents on the child (waiting_on), lowered in the parent's
-- own finishing transaction by the statement trigger jobs_settle, which locks the children (in
-- id order, so two settles never wait on each other in a cycle) before it changes them: two
-- parents finishing at the same instant queue on the child's row lock, and the second sees
-- the first's count, so the child cannot be stranded. A statement that ends no job with
-- dependents pays one scan of its own rows.

ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (
    status IN ('waiting', 'queued', 'scheduled', 'processing', 'completed', 'failed', 'cancelled')
);
ALTER TABLE jobs
    ADD COLUMN workflow_id text,
    ADD COLUMN workflow_key text,
    ADD COLUMN after jsonb,
    ADD COLUMN parents integer NOT NULL DEFAULT 0,
    ADD COLUMN waiting_on integer NOT NULL DEFAULT 0,
    ADD COLUMN dependents integer NOT NULL DEFAULT 0,
    ADD COLUMN on_parent_failure text CHECK (on_parent_failure IN ('cancel', 'run')),
    ADD COLUMN blocked_by text;
CREATE INDEX jobs_workflow ON jobs (workflow_id, seq) WHERE workflow_id IS NOT NULL;

-- A waiting job holds its unique key as a queued one does ({cancellable} now says 'waiting').
DROP INDEX jobs_unique_live;
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND unique_until IS NULL
      AND status IN ('processing', 'queued', 'scheduled', 'waiting');

CREATE TABLE workflows (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at double precision NOT NULL,
    cancelled_at double precision
);
CREATE INDEX workflows_name ON workflows (name, seq);

CREATE TABLE job_deps (
    parent_id text NOT NULL,
    child_id text NOT NULL,
    settled boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_deps_child ON job_deps (child_id);

-- Once per statement, not per row: a batch of outcomes takes each child's lock once and
-- lowers its count once, by the number of its parents the batch settled (per row, every
-- finishing transaction of a fan-in queued on the child's lock, once per parent). A child still
-- waiting whose settled parents include one that failed or was cancelled is cancelled (the
-- first by id is named), unless it runs on parent failure. The trigger's own update fires it
-- again: a cancelled child that has dependents settles them in turn.
CREATE FUNCTION jobhandler_settle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE dependents > 0
        AND status IN ('cancelled', 'completed', 'failed')) THEN
        RETURN NULL;  -- the plain path: no parent ended in this statement
    END IF;
    WITH ended AS (
        SELECT n.id, n.updated_at, CASE WHEN n.status <> 'completed' THEN
            'parent ' || coalesce(n.workflow_key, n.id) || ' (' || n.id || ') '
                || CASE n.status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END
            END AS failure
        FROM new_jobs AS n JOIN old_jobs AS o ON o.id = n.id
        WHERE n.dependents > 0 AND n.status IN ('cancelled', 'completed', 'failed')
          AND o.status NOT IN ('cancelled', 'completed', 'failed')
    ), edges AS (
        UPDATE job_deps AS d SET settled = true
        FROM ended WHERE d.parent_id = ended.id AND NOT d.settled
        RETURNING d.child_id, d.parent_id
    ), settled AS (
        SELECT e.child_id, count(*) AS n, max(p.updated_at) AS at,
            (array_agg(p.id ORDER BY p.id) FILTER (WHERE p.failure IS NOT NULL))[1] AS failed,
            (array_agg(p.failure ORDER BY p.id) FILTER (WHERE p.failure IS NOT NULL))[1]
                AS failure
        FROM edges AS e JOIN ended AS p ON p.id = e.parent_id
        GROUP BY e.child_id
    ), children AS (
        SELECT j.id, s.n, s.at, s.failed, s.failure,
            s.failed IS NOT NULL AND j.status = 'waiting'
                AND coalesce(j.on_parent_failure, 'cancel') <> 'run' AS cancels
        FROM jobs AS j JOIN settled AS s ON s.child_id = j.id
        ORDER BY j.id FOR UPDATE OF j
    )
    UPDATE jobs SET
        waiting_on = jobs.waiting_on - c.n,
        updated_at = c.at,
        status = CASE
            WHEN jobs.status <> 'waiting' THEN jobs.status
            WHEN c.cancels THEN 'cancelled'
            WHEN jobs.waiting_on > c.n THEN 'waiting'
            WHEN jobs.run_at > c.at THEN 'scheduled'
            ELSE 'queued' END,
        blocked_by = CASE WHEN c.cancels THEN c.failed ELSE jobs.blocked_by END,
        error = CASE WHEN c.cancels THEN c.failure ELSE jobs.error END,
        finished_at = CASE WHEN c.cancels THEN c.at ELSE jobs.finished_at END
    FROM children AS c WHERE jobs.id = c.id;
    RETURN NULL;
END $$;

-- Transition tables rule out a column list (UPDATE OF status): the function's first test keeps
-- every other update cheap.
CREATE TRIGGER jobs_settle AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobhandler_settle();

-- A user's retry of a finished parent: its edges open again, and the children its end
-- cancelled wait for it once more, unless another parent that failed still blocks them (then
-- that one is named, in blocked_by and the error). A child that was due (the parent had failed
-- under "run", or the child was retried) waits for it again too: no job is due while a parent
-- is unsettled.
CREATE FUNCTION jobhandler_reopen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH edges AS (
        UPDATE job_deps SET settled = false
        WHERE parent_id = NEW.id AND settled
        RETURNING child_id
    ), children AS (
        SELECT j.id, other.id AS other, other.error AS other_error
        FROM jobs AS j LEFT JOIN LATERAL (
            SELECT p.id, 'parent ' || coalesce(p.workflow_key, p.id) || ' (' || p.id || ') '
                || CASE p.status WHEN 'failed' THEN 'failed' ELSE 'was cancelled' END AS error
            FROM job_deps AS d JOIN jobs AS p ON p.id = d.parent_id
            WHERE d.child_id = j.id AND d.parent_id <> NEW.id
              AND p.status IN ('cancelled', 'failed')
            ORDER BY d.parent_id LIMIT 1
        ) AS other ON true
        WHERE j.id IN (SELECT child_id FROM edges)
        ORDER BY j.id FOR UPDATE OF j
    )
    UPDATE jobs SET
        waiting_on = jobs.waiting_on + 1,
        updated_at = NEW.updated_at,
        status = CASE
            WHEN jobs.status IN ('queued', 'scheduled') THEN 'waiting'
            WHEN jobs.status = 'cancelled' AND jobs.blocked_by = NEW.id
              AND children.other IS NULL THEN 'waiting'
            ELSE jobs.status END,
        error = CASE WHEN jobs.status = 'cancelled' AND jobs.blocked_by = NEW.id
            THEN children.other_error ELSE jobs.error END,
        finished_at = CASE WHEN jobs.status = 'cancelled' AND jobs.blocked_by = NEW.id
            AND children.other IS NULL THEN NULL ELSE jobs.finished_at END,
        blocked_by = CASE WHEN jobs.status = 'cancelled' AND jobs.blocked_by = NEW.id
            THEN children.other ELSE jobs.blocked_by END
    FROM children WHERE jobs.id = children.id;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_reopen AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.dependents > 0 AND OLD.status IN ('cancelled', 'completed', 'failed')
    AND NEW.status NOT IN ('cancelled', 'completed', 'failed'))
EXECUTE FUNCTION jobhandler_reopen();

-- A job that comes due again (a user's retry, a rescue, a release, a retry after a backoff)
-- while a parent is unsettled waits for it instead: no job is due while a parent is unsettled
-- (a job cancelled before its parents finished, or running when a parent was retried). A
-- user's retry also ends its blocking: no parent blocks it any more.
CREATE FUNCTION jobhandler_due_waits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('cancelled', 'failed') THEN
        NEW.blocked_by := NULL;
    END IF;
    IF NEW.waiting_on > 0 THEN
        NEW.status := 'waiting';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_due_waits BEFORE UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.status IN ('queued', 'scheduled')
    AND (NEW.waiting_on > 0 OR NEW.blocked_by IS NOT NULL))
EXECUTE FUNCTION jobhandler_due_waits();

-- A deleted job's edges from its parents go with it.
CREATE FUNCTION jobhandler_forget_edges() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_deps WHERE child_id IN (SELECT id FROM old_jobs WHERE parents > 0);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_forget_edges AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
FOR EACH STATEMENT EXECUTE FUNCTION jobhandler_forget_edges();
