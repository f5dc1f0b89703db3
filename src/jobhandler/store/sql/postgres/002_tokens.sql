-- API tokens: only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE tokens (
    name text PRIMARY KEY,
    scope text NOT NULL CHECK (scope IN ('read', 'submit', 'admin')),
    hash text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    last_used_at double precision
);
