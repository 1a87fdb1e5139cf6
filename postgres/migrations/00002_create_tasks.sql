-- +goose Up
CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        text NOT NULL,
    description  text NULL,
    is_completed boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Serves the list (newest first) and every lookup by owner.
CREATE INDEX tasks_user_id_created_at_id_idx ON tasks (user_id, created_at DESC, id DESC);

-- +goose Down
DROP TABLE tasks;
