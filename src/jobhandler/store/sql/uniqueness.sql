-- Unique keys and idempotency records, as both dialects write them (see ../uniqueness.py).

-- name: claim_window
-- A window-scoped key: taken unless an unexpired window holds it (expired ones were freed
-- just before, in the same transaction).
INSERT INTO unique_windows (key, job_id, expires_at) VALUES (:key, :job_id, :expires_at)
ON CONFLICT (key) DO NOTHING;

-- name: add_idempotency
-- No ON CONFLICT: a key taken makes the whole submit fail and store nothing.
INSERT INTO idempotency (owner, key, fingerprint, batch, items, created_at)
VALUES (:owner, :key, :fingerprint, :batch, :items, :created_at);

-- name: get_idempotency
SELECT * FROM idempotency WHERE owner = :owner AND key = :key;

-- name: prune_windows :when_full
DELETE FROM unique_windows WHERE key IN (
    SELECT key FROM unique_windows WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit
);

-- name: prune_idempotency :when_full
DELETE FROM idempotency WHERE (owner, key) IN (
    SELECT owner, key FROM idempotency WHERE created_at < :before
    ORDER BY created_at LIMIT :limit
);
