-- Row-level security on tasks: a statement sees and writes only the rows of
-- the user the store names per transaction (set_config('app.user_id', id,
-- true)), so a query that forgot its user_id filter still returns nothing of
-- anyone else's. FORCE subjects the table's owner too, since the server
-- usually connects as the role that ran the migrations. Superusers and
-- BYPASSRLS roles are never subject: the server warns at start-up when it
-- runs as one.
--
-- No setting, or the empty string a transaction-local setting leaves
-- behind on its session, matches no row.
--
-- users has no policy: registration and login look an account up by email
-- before anyone is known, and EnsureUser upserts by id; its rows carry no
-- user content. SQLite has no row-level security; its 00003 is empty so both
-- stores keep one version history.

-- +goose Up
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tasks_owner ON tasks
    USING (user_id = NULLIF(current_setting('app.user_id', true), ''))
    WITH CHECK (user_id = NULLIF(current_setting('app.user_id', true), ''));

-- +goose Down
DROP POLICY tasks_owner ON tasks;
ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tasks DISABLE ROW LEVEL SECURITY;
