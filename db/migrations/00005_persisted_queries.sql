-- Persisted operations from clients' build-time manifests. They live in
-- PostgreSQL, not in the Redis cache: a flushed cache must never break a
-- production client that may only send hashes.

-- +goose Up
CREATE TABLE persisted_queries (
    hash       text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    body       text        NOT NULL,
    name       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE persisted_queries;
