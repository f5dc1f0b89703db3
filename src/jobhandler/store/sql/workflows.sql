-- Workflows (../workflows.py): the workflow's row, its jobs with their edges, and reads.

-- name: insert_workflow
INSERT INTO workflows (id, name, created_at) VALUES (:id, :name, :created_at);

-- name: insert_workflow_job :wakes
-- No ON CONFLICT: a unique key a live job holds fails the whole workflow (nothing is stored).
INSERT INTO jobs ({new_columns}, workflow_id, workflow_key, after, parents, waiting_on,
    dependents, on_parent_failure)
VALUES ({new_values}, :workflow_id, :workflow_key, :after, :parents, :waiting_on, :dependents,
    :on_parent_failure);

-- name: insert_edge
INSERT INTO job_deps (parent_id, child_id) VALUES (:parent_id, :child_id);

-- name: get_workflow
SELECT * FROM workflows WHERE id = :id;

-- name: workflow_jobs
SELECT id, workflow_key, task, status, after, parents, error, created_at, finished_at
FROM jobs WHERE workflow_id = :id ORDER BY seq;

-- name: page_workflows
-- Newest first; a workflow's status is derived from its jobs (model/workflows.py says how),
-- so there is no row to update, and contend on, as each of its jobs finishes.
SELECT * FROM (
    SELECT w.seq, w.id, w.name, w.created_at, w.cancelled_at, CASE
        WHEN w.cancelled_at IS NOT NULL THEN 'cancelled'
        WHEN EXISTS (
            SELECT 1 FROM jobs AS j WHERE j.workflow_id = w.id AND j.status NOT IN {terminal}
        ) THEN 'running'
        WHEN EXISTS (
            SELECT 1 FROM jobs AS j WHERE j.workflow_id = w.id AND j.status <> 'completed'
        ) THEN 'failed'
        ELSE 'completed' END AS status
    FROM workflows AS w
    WHERE w.seq < :before AND (CAST(:name AS TEXT) IS NULL OR w.name = :name)
) AS page
WHERE :any_status OR (status = 'running' AND :running) OR (status = 'completed' AND :completed)
    OR (status = 'failed' AND :failed) OR (status = 'cancelled' AND :cancelled)
ORDER BY seq DESC LIMIT :limit;

-- name: workflow_counts
-- Jobs per status of the workflows whose seq is in [:low, :high] (a page's).
SELECT j.workflow_id, j.status, count(*) AS n
FROM workflows AS w JOIN jobs AS j ON j.workflow_id = w.id
WHERE w.seq BETWEEN :low AND :high
GROUP BY j.workflow_id, j.status;

-- name: cancel_workflow :when_full
UPDATE workflows SET cancelled_at = :now WHERE id = :id AND cancelled_at IS NULL;

-- name: parent_results
-- What a workflow job's parents left it: their keys, statuses, results and errors.
SELECT j.id, j.workflow_key, j.status, j.result, j.error
FROM job_deps AS d JOIN jobs AS j ON j.id = d.parent_id
WHERE d.child_id = :id;

-- name: prune_workflows :when_full
-- Workflows none of whose jobs are left (the pruner took them).
DELETE FROM workflows WHERE created_at < :before
  AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.workflow_id = workflows.id);

-- name: spawn_job :wakes
-- A running job's child, fenced by the parent's attempt: a run that lost its job adds nothing.
INSERT INTO jobs ({new_columns}, workflow_id, workflow_key, after, parents, waiting_on,
    dependents, on_parent_failure)
SELECT {new_values}, :workflow_id, :workflow_key, NULL, 0, 0, 0, NULL
WHERE EXISTS (
    SELECT 1 FROM jobs WHERE id = :parent AND attempt = :attempt AND status = {running}
);

-- name: spawn_edges
-- The jobs that run after the parent run after its child too.
INSERT INTO job_deps (parent_id, child_id)
SELECT :id, d.child_id FROM job_deps AS d
WHERE d.parent_id = :parent AND NOT d.settled AND EXISTS (SELECT 1 FROM jobs WHERE id = :id);

-- name: spawn_dependents
UPDATE jobs SET dependents = (SELECT count(*) FROM job_deps WHERE parent_id = :id)
WHERE id = :id;

-- name: import_workflow
INSERT INTO workflows (id, name, created_at, cancelled_at)
VALUES (:id, :name, :created_at, :cancelled_at);
