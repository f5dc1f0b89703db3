-- Leader election: one lease row per role (maintenance, the scheduler...). A holder keeps the
-- role while it renews before expires_at; once that passes, any other may take it.
CREATE TABLE leaders (
    role TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
