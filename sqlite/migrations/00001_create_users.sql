-- +goose Up
-- Times are INTEGER unix microseconds in UTC: exact, and they sort exactly.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT UNIQUE,
    password_hash BLOB,
    name          TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE users;
