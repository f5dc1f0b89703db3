-- What a task was given and what it returned come back as they went in: jsonb stores objects
-- with their keys sorted by length then bytes (and drops duplicates), so a dict result read
-- from PostgreSQL had its keys reordered, unlike on SQLite. json keeps the text as written.
-- No query looks inside these columns (no jsonb operator, index or equality), so nothing is
-- lost. Rows written before this keep the order jsonb gave them.
ALTER TABLE jobs
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN result TYPE json USING result::json,
    ALTER COLUMN progress TYPE json USING progress::json;
ALTER TABLE schedules ALTER COLUMN payload TYPE json USING payload::json;
