-- Background work: self-service account deletion with a grace period,
-- exports and imports (their results and row errors), and the audit log's
-- partition upkeep done by the periodic maintenance job.

-- +goose Up
-- Set when a user deletes their own account: the account is soft-deleted at
-- once and hard-deleted by the maintenance job after this moment, unless
-- the user logs back in first. Admin deletions leave it NULL (restorable,
-- never purged).
ALTER TABLE users ADD COLUMN purge_after timestamptz;
CREATE INDEX users_purge_after_idx ON users (purge_after) WHERE purge_after IS NOT NULL;

-- An export's file and progress; the River job (job_id) carries the state,
-- attempts and errors. The file lives under the configured export
-- directory; expired ones are removed by the maintenance job.
CREATE TABLE exports (
    id           uuid PRIMARY KEY,
    job_id       bigint      NOT NULL UNIQUE,
    requested_by uuid        NOT NULL,
    -- USERS: an admin's export of a filtered user list; MY_DATA: a user's
    -- own data.
    kind         text        NOT NULL CHECK (kind IN ('USERS', 'MY_DATA')),
    format       text        NOT NULL CHECK (format IN ('CSV', 'JSONL', 'JSON')),
    filter       jsonb       NOT NULL DEFAULT '{}',
    rows_total   bigint,
    rows_done    bigint      NOT NULL DEFAULT 0,
    bytes        bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX exports_expires_at_idx ON exports (expires_at);

-- A bulk import. The CSV is kept here (not on one instance's disk) so any
-- worker can run it; progress is committed with each batch, so a retried
-- job resumes after the last committed row instead of inserting twice.
CREATE TABLE user_imports (
    id              uuid PRIMARY KEY,
    job_id          bigint      NOT NULL UNIQUE,
    requested_by    uuid        NOT NULL,
    idempotency_key text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- The CSV itself, given inline or fetched from source_url by the
    -- first attempt (so a retry reads the same data).
    csv             text        NOT NULL DEFAULT '',
    source_url      text,
    rows_total      int,
    rows_done       int         NOT NULL DEFAULT 0,
    inserted        int         NOT NULL DEFAULT 0,
    failed          int         NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    UNIQUE (requested_by, idempotency_key)
);

CREATE TABLE user_import_errors (
    import_id uuid NOT NULL REFERENCES user_imports (id) ON DELETE CASCADE,
    line      int  NOT NULL,
    field     text NOT NULL DEFAULT '',
    message   text NOT NULL,
    PRIMARY KEY (import_id, line, field)
);

-- Creates the monthly partitions from the current month to months_ahead
-- months later. Rows that fell into the default partition for a month that
-- now gets its own partition are moved there: the old default partition is
-- detached, a fresh one attached, the rows re-inserted through the parent
-- (which routes them) and the old table dropped. Nothing is updated or
-- deleted row by row, so the append-only trigger is respected.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_ensure_partitions(months_ahead int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m  date := date_trunc('month', now())::date;
    lo date;
    i  int;
    name text;
    stranded boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_events_partitions', 0));
    FOR i IN 0..months_ahead LOOP
        lo := m + make_interval(months => i);
        name := 'audit_events_' || to_char(lo, 'YYYY_MM');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        stranded := to_regclass('audit_events_default') IS NOT NULL AND EXISTS (
            SELECT 1 FROM audit_events_default WHERE occurred_at >= lo AND occurred_at < lo + interval '1 month');
        IF stranded THEN
            ALTER TABLE audit_events DETACH PARTITION audit_events_default;
            ALTER TABLE audit_events_default RENAME TO audit_events_default_old;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
            name, lo, lo + interval '1 month');
        IF stranded THEN
            CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;
            INSERT INTO audit_events SELECT * FROM audit_events_default_old;
            DROP TABLE audit_events_default_old;
        END IF;
    END LOOP;
END $$;
-- +goose StatementEnd

-- Drops the monthly partitions that end at or before cutoff: retention
-- removes whole months, never single rows. Returns the dropped tables.
-- +goose StatementBegin
CREATE FUNCTION audit_events_drop_partitions(cutoff timestamptz) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_events_partitions', 0));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass AND c.relname ~ '^audit_events_\d{4}_\d{2}$'
          AND to_date(substring(c.relname from 14), 'YYYY_MM') + interval '1 month' <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION audit_events_drop_partitions(timestamptz);
DROP TABLE user_import_errors;
DROP TABLE user_imports;
DROP TABLE exports;
ALTER TABLE users DROP COLUMN purge_after;
