-- Store each user's tasks together, in list order. In the rowid table a
-- user's 50 tasks sat on up to 50 pages, and the list query paid one
-- b-tree descent per task after the index scan; clustered on
-- (user_id, created_at, id) the list is one range scan over a few
-- neighbouring pages. A unique index on id serves the by-id statements,
-- which also name the user.
-- +goose Up
CREATE TABLE tasks_clustered (
    id           TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    description  TEXT,
    is_completed INTEGER NOT NULL DEFAULT 0 CHECK (is_completed IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, created_at, id)
) STRICT, WITHOUT ROWID;
INSERT INTO tasks_clustered (id, user_id, title, description, is_completed, created_at, updated_at)
    SELECT id, user_id, title, description, is_completed, created_at, updated_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_clustered RENAME TO tasks;

-- +goose Down
CREATE TABLE tasks_rowid (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    description  TEXT,
    is_completed INTEGER NOT NULL DEFAULT 0 CHECK (is_completed IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
INSERT INTO tasks_rowid (id, user_id, title, description, is_completed, created_at, updated_at)
    SELECT id, user_id, title, description, is_completed, created_at, updated_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_rowid RENAME TO tasks;
CREATE INDEX tasks_user_id_created_at_id_idx ON tasks (user_id, created_at DESC, id DESC);
