-- API tokens: only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'submit', 'admin')),
    hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_used_at REAL
);
