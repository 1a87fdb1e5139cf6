-- Row-level security exists only in PostgreSQL (postgres/migrations/00003);
-- this migration keeps both stores on one version history.
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
