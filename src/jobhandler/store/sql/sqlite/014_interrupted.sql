-- Runs a graceful stop handed back (an "interrupted" run): counted, so that after
-- FREE_INTERRUPTIONS of them (model/jobs.py) an interruption uses an attempt like any run.
ALTER TABLE jobs ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
