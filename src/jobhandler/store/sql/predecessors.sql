-- A worker whose process is known to be gone: its running jobs' leases end now, so the rescue
-- that follows (fenced by attempt, guarded by the expired lease) may take them back.

-- name: expire_leases_of :relaxed :when_full
UPDATE jobs SET lease_expires_at = :expired
WHERE worker_id = :worker AND status = {running}
RETURNING *;
