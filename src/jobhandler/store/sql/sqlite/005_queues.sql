-- Flow control: one row per queue or task that is paused or limited. A row with nothing set
-- (no pause, no limit) only remembers what the code declared; the claim ignores it.
-- concurrency: jobs of it processing at once, over all workers. rate_count per rate_period
-- seconds: a token bucket (tokens, as of refilled_at) spent by the claim in its transaction.
-- declared_*: what the code declared last; a worker overwrites a value set at run time only
-- when the code's declaration changes.
CREATE TABLE flow_limits (
    scope TEXT NOT NULL CHECK (scope IN ('queue', 'task')),
    name TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    concurrency INTEGER CHECK (concurrency >= 1),
    rate_limit TEXT,
    rate_count INTEGER CHECK (rate_count >= 1),
    rate_period REAL CHECK (rate_period > 0),
    declared_concurrency INTEGER,
    declared_rate_limit TEXT,
    tokens REAL NOT NULL DEFAULT 0,
    refilled_at REAL NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, name)
);
