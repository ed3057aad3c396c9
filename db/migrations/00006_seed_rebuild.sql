-- A bulk seed commits its rows before rebuilding the indexes and keys it
-- dropped for the load, so that several connections can build them at once.
-- Until each is rebuilt, the statement that puts it back waits here: a step
-- that is still here has not been done, and the next seed or server start
-- runs what is left (seed.Finish).

-- +goose Up
CREATE TABLE seed_rebuild (
    step      int     PRIMARY KEY,
    -- Index builds run on several connections at once; the other steps
    -- (keys, triggers, counters) run after them, in step order, in one
    -- transaction.
    parallel  boolean NOT NULL,
    statement text    NOT NULL
);

-- +goose Down
DROP TABLE seed_rebuild;
