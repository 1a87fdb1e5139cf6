-- +goose Up
-- Times are INTEGER unix microseconds in UTC: exact, and they sort exactly.
CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    description  TEXT,
    is_completed INTEGER NOT NULL DEFAULT 0 CHECK (is_completed IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- The list query: a user's tasks, newest first.
CREATE INDEX tasks_user_id_created_at_id_idx ON tasks (user_id, created_at DESC, id DESC);

-- +goose Down
DROP INDEX tasks_user_id_created_at_id_idx;
DROP TABLE tasks;
