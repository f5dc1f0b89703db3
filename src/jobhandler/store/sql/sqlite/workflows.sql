-- SQLite's own workflow queries (see ../workflows.sql).

-- name: spawn_waits
-- The parent's dependents wait for its new child too (after: its id appended).
UPDATE jobs SET waiting_on = waiting_on + 1,
    after = json_insert(coalesce(after, '[]'), '$[#]', :id)
WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = :id);

-- name: wake_workers :wakes
-- Nothing to write: its commit tells idle workers that jobs may have become due.
SELECT 1;

-- name: rebuild_edges
-- After a copy (../../../service/transfer.py): each job's after as edges, settled where the
-- parent finished or is gone.
INSERT OR IGNORE INTO job_deps (parent_id, child_id, settled)
SELECT parent.value, j.id, coalesce(
    (SELECT p.status IN {terminal} FROM jobs AS p WHERE p.id = parent.value), 1)
FROM jobs AS j, json_each(j.after) AS parent
WHERE j.after IS NOT NULL;
