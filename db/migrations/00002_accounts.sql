-- Accounts: passwords, sessions, one-time tokens and the audit log.

-- +goose Up
-- An argon2id PHC string; NULL for accounts that cannot log in with a
-- password (created by an admin and not yet set up).
ALTER TABLE users ADD COLUMN password_hash text;

-- Sessions are the source of truth for who is logged in; caches in front of
-- this table only shorten the lookup. Only the SHA-256 of a token is stored.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL,
    user_agent   text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    ip           inet,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    -- The absolute end of the session; the idle timeout is checked against
    -- last_seen_at.
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
-- mySessions (keyset by creation) and "at most N sessions per user".
CREATE INDEX sessions_user_id_created_at_id_idx ON sessions (user_id, created_at, id) WHERE revoked_at IS NULL;
-- Purging expired sessions.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Email verification and password reset tokens: single use, expiring, only
-- their SHA-256 stored.
CREATE TABLE user_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('VERIFY_EMAIL', 'RESET_PASSWORD')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX user_tokens_user_id_purpose_idx ON user_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX user_tokens_expires_at_idx ON user_tokens (expires_at);

-- The audit log: append-only, range-partitioned by month so that old months
-- are dropped whole and queries for a time range touch only their months.
CREATE TABLE audit_events (
    id          uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_id    uuid,
    action      text        NOT NULL,
    target_type text,
    target_id   uuid,
    ip          inet,
    user_agent  text        NOT NULL DEFAULT '',
    metadata    jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, occurred_at, id);
CREATE INDEX audit_events_target_id_idx ON audit_events (target_id, occurred_at, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at, id);

-- Append-only whatever the role: rows cannot be changed or removed one by
-- one; retention drops whole partitions.
-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;

-- Creates the monthly partitions from the current month to months_ahead
-- months later; the periodic maintenance job calls it too.
-- +goose StatementBegin
CREATE FUNCTION audit_events_ensure_partitions(months_ahead int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', now())::date;
    i int;
BEGIN
    FOR i IN 0..months_ahead LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
            'audit_events_' || to_char(m + make_interval(months => i), 'YYYY_MM'),
            m + make_interval(months => i), m + make_interval(months => i + 1));
    END LOOP;
END $$;
-- +goose StatementEnd
SELECT audit_events_ensure_partitions(3);

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_ensure_partitions(int);
DROP FUNCTION audit_events_append_only();
DROP TABLE user_tokens;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN password_hash;
