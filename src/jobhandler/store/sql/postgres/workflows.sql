-- PostgreSQL's own workflow queries (see ../workflows.sql).

-- name: spawn_waits
-- The parent's dependents wait for its new child too (after: its id appended). In id order,
-- as the settle trigger locks them.
WITH children AS (
    SELECT id FROM jobs WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = :id)
    ORDER BY id FOR UPDATE
)
UPDATE jobs SET waiting_on = jobs.waiting_on + 1,
    after = coalesce(jobs.after, '[]'::jsonb) || to_jsonb(:id::text)
FROM children WHERE jobs.id = children.id;

-- name: wake_workers
SELECT pg_notify({submit_channel}, '');

-- name: rebuild_edges
-- After a copy (../../../service/transfer.py): each job's after as edges, settled where the
-- parent finished or is gone.
INSERT INTO job_deps (parent_id, child_id, settled)
SELECT parent.value, j.id, coalesce(
    (SELECT p.status IN {terminal} FROM jobs AS p WHERE p.id = parent.value), true)
FROM jobs AS j, jsonb_array_elements_text(j.after) AS parent(value)
WHERE j.after IS NOT NULL
ON CONFLICT DO NOTHING;
