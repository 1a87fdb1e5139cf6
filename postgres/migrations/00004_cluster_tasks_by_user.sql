-- SQLite's migration 00004 clusters tasks by user; PostgreSQL's heap and
-- its (user_id, created_at, id) index already serve the list query, and
-- its shared buffers keep the pages hot. This keeps both stores on one
-- version history.
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
