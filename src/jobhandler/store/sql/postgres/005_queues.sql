-- Flow control: one row per queue or task that is paused or limited. A row with nothing set
-- (no pause, no limit) only remembers what the code declared; the claim ignores it.
-- concurrency: jobs of it processing at once, over all workers. rate_count per rate_period
-- seconds: a token bucket (tokens, as of refilled_at) spent by the claim in its transaction.
-- declared_*: what the code declared last; a worker overwrites a value set at run time only
-- when the code's declaration changes.
CREATE TABLE flow_limits (
    scope text NOT NULL CHECK (scope IN ('queue', 'task')),
    name text NOT NULL,
    paused boolean NOT NULL DEFAULT false,
    concurrency integer CHECK (concurrency >= 1),
    rate_limit text,
    rate_count integer CHECK (rate_count >= 1),
    rate_period double precision CHECK (rate_period > 0),
    declared_concurrency integer,
    declared_rate_limit text,
    tokens double precision NOT NULL DEFAULT 0,
    refilled_at double precision NOT NULL DEFAULT 0,
    updated_at double precision NOT NULL,
    PRIMARY KEY (scope, name)
);
