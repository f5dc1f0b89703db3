-- Leader election: one lease row per role (maintenance, the scheduler...). A holder keeps the
-- role while it renews before expires_at (on the database's timeline, like job leases); once
-- that passes, any other may take it.
CREATE TABLE leaders (
    role text PRIMARY KEY,
    holder text NOT NULL,
    expires_at double precision NOT NULL
);
