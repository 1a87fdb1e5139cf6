-- +goose Up
CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NULL CONSTRAINT users_email_key UNIQUE,
    password_hash bytea NULL,
    name          text NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE users;
