-- SQLite's own workflow queries (see ../workflows.sql).

-- name: spawn_waits
-- The parent's dependents wait for its new child too (after: its id appended, while the row
-- keeps its parents' ids).
UPDATE jobs SET waiting_on = waiting_on + 1, parents = parents + 1,
    after = CASE WHEN parents < {kept_parents}
        THEN json_insert(coalesce(after, '[]'), '$[#]', :id) END
WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = :id);

-- name: wake_workers :wakes :relaxed :when_full
-- Relaxed: it writes nothing, and the outcomes it follows need not wait for the disk; without
-- the flag every batch of workflow parents fsynced its commit, the fan-in's last one included.
-- After parents' finishing writes, in their transaction: a row when one of their children is
-- due now, and then its commit tells idle workers (a step with the flag wakes them only when
-- it returns or writes something). A parent of a child still waiting on others wakes nobody:
-- in a fan-in of 10,000, each batch of parents would wake every worker to claim nothing.
-- CROSS JOIN keeps the parents first: by status, SQLite would walk every due job instead.
SELECT 1 FROM json_each(:parents) AS p
CROSS JOIN job_deps AS d CROSS JOIN jobs AS c
WHERE d.parent_id = p.value AND c.id = d.child_id AND c.status IN {claimable}
LIMIT 1;

-- name: rebuild_edges
-- After a copy (../../../service/transfer.py): each job's after as edges, settled where the
-- parent finished or is gone.
INSERT OR IGNORE INTO job_deps (parent_id, child_id, settled)
SELECT parent.value, j.id, coalesce(
    (SELECT p.status IN {terminal} FROM jobs AS p WHERE p.id = parent.value), 1)
FROM jobs AS j, json_each(j.after) AS parent
WHERE j.after IS NOT NULL;

-- name: parent_ids
-- The parents of the jobs :ids names, whose rows keep too many to list them (after), in the
-- order they were stored.
SELECT d.child_id, d.parent_id FROM job_deps AS d LEFT JOIN jobs AS p ON p.id = d.parent_id
WHERE d.child_id IN (SELECT value FROM json_each(:ids))
ORDER BY d.child_id, p.seq, d.parent_id;

-- name: trim_after
-- After a copy's rebuild_edges: a row keeps only a few parents' ids (../../rows.py KEPT_PARENTS).
UPDATE jobs SET after = NULL WHERE parents > {kept_parents} AND after IS NOT NULL;
