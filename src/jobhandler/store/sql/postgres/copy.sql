-- A big submit without unique keys goes by COPY instead of insert_jobs (see postgres.py): the
-- rows stream in the server's own format, with no array to build and parse per column. The
-- NOTIFY that insert_jobs sends goes out in the same transaction.

-- name: copy_jobs
COPY jobs ({new_columns}) FROM STDIN;

-- name: notify_submit
SELECT pg_notify({submit_channel}, '');
