-- PostgreSQL's own workflow queries (see ../workflows.sql).

-- name: spawn_waits
-- The parent's dependents wait for its new child too (after: its id appended, while the row
-- keeps its parents' ids). In id order,
-- as the settle trigger locks them.
WITH children AS (
    SELECT id FROM jobs WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = :id)
    ORDER BY id FOR UPDATE
)
UPDATE jobs SET waiting_on = jobs.waiting_on + 1, parents = jobs.parents + 1,
    after = CASE WHEN jobs.parents < {kept_parents}
        THEN coalesce(jobs.after, '[]'::jsonb) || to_jsonb(:id::text) END
FROM children WHERE jobs.id = children.id;

-- name: wake_workers :relaxed
-- Relaxed: the outcomes it follows commit with synchronous_commit off (see ../sqlite/).
-- After parents' finishing writes, in their transaction: notify when one of their children is
-- due now (a parent of a child still waiting on others wakes nobody; see ../sqlite/).
-- Each child is read by its id: joined, the planner walked every queued job by status (the
-- fan-in's thousands of due parents) for each batch, 4.7 ms of its 6 ms.
SELECT pg_notify({submit_channel}, '') WHERE EXISTS (
    SELECT 1 FROM job_deps AS d
    WHERE d.parent_id = ANY(:parents)
      AND (SELECT c.status FROM jobs AS c WHERE c.id = d.child_id) IN {claimable}
);

-- name: rebuild_edges
-- After a copy (../../../service/transfer.py): each job's after as edges, settled where the
-- parent finished or is gone.
INSERT INTO job_deps (parent_id, child_id, settled)
SELECT parent.value, j.id, coalesce(
    (SELECT p.status IN {terminal} FROM jobs AS p WHERE p.id = parent.value), true)
FROM jobs AS j, jsonb_array_elements_text(j.after) AS parent(value)
WHERE j.after IS NOT NULL
ON CONFLICT DO NOTHING;

-- name: parent_ids
-- The parents of the jobs :ids names, whose rows keep too many to list them (after), in the
-- order they were stored.
SELECT d.child_id, d.parent_id FROM job_deps AS d LEFT JOIN jobs AS p ON p.id = d.parent_id
WHERE d.child_id = ANY(:ids)
ORDER BY d.child_id, p.seq, d.parent_id;

-- name: trim_after
-- After a copy's rebuild_edges: a row keeps only a few parents' ids (../../rows.py KEPT_PARENTS).
UPDATE jobs SET after = NULL WHERE parents > {kept_parents} AND after IS NOT NULL;
