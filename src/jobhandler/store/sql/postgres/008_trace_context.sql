-- The W3C traceparent of the submit that made a job (tracing.py): a worker's span for each run
-- continues the submitter's trace. NULL when the submitter was not tracing.
ALTER TABLE jobs ADD COLUMN trace_context text;
