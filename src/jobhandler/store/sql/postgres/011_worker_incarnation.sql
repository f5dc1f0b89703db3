-- Which boot of which host (and PID namespace) a worker runs in: a worker that starts again on
-- the same one can tell that a registered predecessor's process is gone, and rescue its jobs
-- at once instead of after their lease.
ALTER TABLE workers ADD COLUMN incarnation TEXT;
