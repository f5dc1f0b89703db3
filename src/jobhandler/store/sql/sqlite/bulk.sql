-- SQLite's own statements of bulk actions (see ../../bulk.py): each takes the seqs of one
-- batch, as JSON text, and changes only those its guard (from the state machine) still allows.

-- name: bulk_cancel :when_full
UPDATE jobs SET
    status = CASE WHEN status IN {unstarted} THEN {cancelled} ELSE status END,
    finished_at = CASE WHEN status IN {unstarted} THEN :now ELSE finished_at END,
    cancel_requested = true, updated_at = :now
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status IN {cancellable}
  AND NOT (status = {running} AND cancel_requested)
RETURNING id, status;

-- name: bulk_retry :wakes
-- A workflow job whose parents are not all settled waits for them again.
UPDATE jobs SET status = CASE WHEN waiting_on > 0 THEN {waiting} ELSE {requeued} END,
    run_at = :now, updated_at = :now, uncounted = attempt, blocked_by = NULL,
    finished_at = NULL, result = NULL, error = NULL, traceback = NULL,
    cancel_requested = false, progress = NULL, lease_expires_at = NULL
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status IN {retryable}
  -- Not while another job holds its unique key (see ../../uniqueness.py), nor after a job of
  -- the batch before it with the same live key (the first of them goes, the others see it held).
  AND NOT EXISTS (SELECT 1 FROM jobs AS holder WHERE {key_held})
  AND NOT EXISTS (
    SELECT 1 FROM jobs AS mate
    WHERE mate.seq IN (SELECT value FROM json_each(:seqs)) AND mate.seq < jobs.seq AND mate.status IN {retryable}
      AND mate.unique_key = jobs.unique_key
      AND mate.unique_until IS NULL AND jobs.unique_until IS NULL
  )
RETURNING id, status;

-- name: bulk_delete :when_full
DELETE FROM jobs WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status IN {terminal}
RETURNING id, status;
