-- Inserted jobs are counted once per insert statement (the count_inserted query, which every
-- unit of work that inserts jobs runs after its insert: Resource.counted) instead of by a
-- trigger per row: that trigger's UPSERT was about half the store's time in a bulk submit.
-- The counts themselves are unchanged. Updates, deletes and moves keep their triggers (009).
DROP TRIGGER jobs_count_insert;
