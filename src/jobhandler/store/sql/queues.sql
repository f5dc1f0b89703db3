-- Flow control: pauses and limits of queues and tasks (see ../queues.py). The claim that
-- honours them is in <dialect>/claim.sql.

-- name: flow_limits
SELECT * FROM flow_limits ORDER BY scope, name;

-- name: set_paused :when_full
INSERT INTO flow_limits (scope, name, paused, updated_at) VALUES ('queue', :name, :paused, :now)
ON CONFLICT (scope, name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
RETURNING *;

-- name: set_limits :when_full
-- A field not being set keeps its value; a new rate starts with a full bucket (a new key rate:
-- the keys' buckets in key_buckets are clipped to it as they are read).
INSERT INTO flow_limits (
    scope, name, concurrency, rate_limit, rate_count, rate_period, tokens, refilled_at,
    key_concurrency, key_rate_limit, key_rate_count, key_rate_period, updated_at
) VALUES (
    :scope, :name, :concurrency, :rate_limit, :rate_count, :rate_period,
    coalesce(:rate_count, 0), :now,
    :key_concurrency, :key_rate_limit, :key_rate_count, :key_rate_period, :now
)
ON CONFLICT (scope, name) DO UPDATE SET
    concurrency = CASE WHEN :set_concurrency THEN excluded.concurrency
        ELSE flow_limits.concurrency END,
    rate_limit = CASE WHEN :set_rate THEN excluded.rate_limit ELSE flow_limits.rate_limit END,
    rate_count = CASE WHEN :set_rate THEN excluded.rate_count ELSE flow_limits.rate_count END,
    rate_period = CASE WHEN :set_rate THEN excluded.rate_period
        ELSE flow_limits.rate_period END,
    tokens = CASE WHEN :set_rate THEN excluded.tokens ELSE flow_limits.tokens END,
    refilled_at = CASE WHEN :set_rate THEN excluded.refilled_at
        ELSE flow_limits.refilled_at END,
    key_concurrency = CASE WHEN :set_key_concurrency THEN excluded.key_concurrency
        ELSE flow_limits.key_concurrency END,
    key_rate_limit = CASE WHEN :set_key_rate THEN excluded.key_rate_limit
        ELSE flow_limits.key_rate_limit END,
    key_rate_count = CASE WHEN :set_key_rate THEN excluded.key_rate_count
        ELSE flow_limits.key_rate_count END,
    key_rate_period = CASE WHEN :set_key_rate THEN excluded.key_rate_period
        ELSE flow_limits.key_rate_period END,
    updated_at = excluded.updated_at
RETURNING *;

-- name: declare_limits :when_full
-- The code's values replace those in force only where the code's declaration changed.
INSERT INTO flow_limits (
    scope, name, concurrency, rate_limit, rate_count, rate_period,
    declared_concurrency, declared_rate_limit, tokens, refilled_at,
    key_concurrency, key_rate_limit, key_rate_count, key_rate_period,
    declared_key_concurrency, declared_key_rate_limit, updated_at
) VALUES (
    :scope, :name, :concurrency, :rate_limit, :rate_count, :rate_period,
    :concurrency, :rate_limit, coalesce(:rate_count, 0), :now,
    :key_concurrency, :key_rate_limit, :key_rate_count, :key_rate_period,
    :key_concurrency, :key_rate_limit, :now
)
ON CONFLICT (scope, name) DO UPDATE SET
    concurrency = CASE
        WHEN coalesce(flow_limits.declared_concurrency, 0)
            <> coalesce(excluded.declared_concurrency, 0)
        THEN excluded.concurrency ELSE flow_limits.concurrency END,
    rate_limit = CASE
        WHEN coalesce(flow_limits.declared_rate_limit, '')
            <> coalesce(excluded.declared_rate_limit, '')
        THEN excluded.rate_limit ELSE flow_limits.rate_limit END,
    rate_count = CASE
        WHEN coalesce(flow_limits.declared_rate_limit, '')
            <> coalesce(excluded.declared_rate_limit, '')
        THEN excluded.rate_count ELSE flow_limits.rate_count END,
    rate_period = CASE
        WHEN coalesce(flow_limits.declared_rate_limit, '')
            <> coalesce(excluded.declared_rate_limit, '')
        THEN excluded.rate_period ELSE flow_limits.rate_period END,
    tokens = CASE
        WHEN coalesce(flow_limits.declared_rate_limit, '')
            <> coalesce(excluded.declared_rate_limit, '')
        THEN excluded.tokens ELSE flow_limits.tokens END,
    key_concurrency = CASE
        WHEN coalesce(flow_limits.declared_key_concurrency, 0)
            <> coalesce(excluded.declared_key_concurrency, 0)
        THEN excluded.key_concurrency ELSE flow_limits.key_concurrency END,
    key_rate_limit = CASE
        WHEN coalesce(flow_limits.declared_key_rate_limit, '')
            <> coalesce(excluded.declared_key_rate_limit, '')
        THEN excluded.key_rate_limit ELSE flow_limits.key_rate_limit END,
    key_rate_count = CASE
        WHEN coalesce(flow_limits.declared_key_rate_limit, '')
            <> coalesce(excluded.declared_key_rate_limit, '')
        THEN excluded.key_rate_count ELSE flow_limits.key_rate_count END,
    key_rate_period = CASE
        WHEN coalesce(flow_limits.declared_key_rate_limit, '')
            <> coalesce(excluded.declared_key_rate_limit, '')
        THEN excluded.key_rate_period ELSE flow_limits.key_rate_period END,
    declared_concurrency = excluded.declared_concurrency,
    declared_rate_limit = excluded.declared_rate_limit,
    declared_key_concurrency = excluded.declared_key_concurrency,
    declared_key_rate_limit = excluded.declared_key_rate_limit,
    updated_at = excluded.updated_at;
