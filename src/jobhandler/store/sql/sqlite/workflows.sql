-- SQLite's own workflow queries (see ../workflows.sql).

-- name: spawn_waits
-- The parent's dependents wait for its new child too (after: its id appended).
UPDATE jobs SET waiting_on = waiting_on + 1,
    after = json_insert(coalesce(after, '[]'), '$[#]', :id)
WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = :id);

-- name: wake_workers :wakes
-- Nothing to write: its commit tells idle workers that jobs may have become due.
SELECT 1;
