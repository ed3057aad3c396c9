-- Core model: users, roles, groups and the relations between them.
--
-- Every index below serves a query the API sends; the keyset ("seek") indexes
-- are composite (sort key, id) so that a page deep into the table costs the
-- same as page one. Indexes over users are partial (deleted_at IS NULL) because
-- soft-deleted users are invisible to every listing.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    -- Emails are stored lower-cased so a plain unique index makes them unique
    -- case-insensitively and the same index serves ORDER BY email.
    email             text        NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    username          text        NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    display_name      text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    status            text        NOT NULL DEFAULT 'ACTIVE'
                                  CHECK (status IN ('ACTIVE', 'PENDING', 'SUSPENDED', 'DEACTIVATED')),
    email_verified_at timestamptz,
    last_login_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);

-- Uniqueness spans soft-deleted users too, so restoring a user never collides.
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- Keyset pagination, one index per UserOrderField.
CREATE INDEX users_created_at_id_idx ON users (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_email_id_idx ON users (email, id) WHERE deleted_at IS NULL;
CREATE INDEX users_username_id_idx ON users (username, id) WHERE deleted_at IS NULL;
CREATE INDEX users_display_name_id_idx ON users (display_name, id) WHERE deleted_at IS NULL;

-- Substring search over email, username and display name. The query must use
-- exactly this expression (see db.userSearchExpr).
CREATE INDEX users_search_trgm_idx ON users
    USING gin ((email || ' ' || lower(username) || ' ' || lower(display_name)) gin_trgm_ops)
    WHERE deleted_at IS NULL;

-- Filtering by status keeps the default (created_at, id) order.
CREATE INDEX users_status_created_at_id_idx ON users (status, created_at, id) WHERE deleted_at IS NULL;

-- Finding soft-deleted users (restore, purge after the grace period).
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE roles (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description text        NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    permissions text[]      NOT NULL DEFAULT '{}',
    -- Live (not soft-deleted) holders, maintained by triggers so Role.userCount
    -- is a column read rather than a count over a large relation.
    user_count  bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_key ON roles (lower(name));
CREATE INDEX roles_name_id_idx ON roles (name, id);
CREATE INDEX roles_created_at_id_idx ON roles (created_at, id);

CREATE TABLE groups (
    id           uuid PRIMARY KEY,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text        NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    -- Live members, maintained by triggers (see roles.user_count).
    member_count bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));
CREATE INDEX groups_name_id_idx ON groups (name, id);
CREATE INDEX groups_created_at_id_idx ON groups (created_at, id);

CREATE TABLE user_roles (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id     uuid        NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
-- Role.users pages by assignment time; filtering users by role.
CREATE INDEX user_roles_role_id_assigned_at_user_id_idx ON user_roles (role_id, assigned_at, user_id);

CREATE TABLE group_members (
    group_id  uuid        NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      text        NOT NULL DEFAULT 'MEMBER' CHECK (role IN ('MEMBER', 'ADMIN')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
-- User.groups and filtering users by group.
CREATE INDEX group_members_user_id_group_id_idx ON group_members (user_id, group_id);
-- Group.members pages by join time.
CREATE INDEX group_members_group_id_joined_at_user_id_idx ON group_members (group_id, joined_at, user_id);

-- Counter maintenance. Statement-level triggers with transition tables keep
-- bulk loads (COPY of millions of memberships) to one UPDATE per statement.
-- Only live users count, so soft delete and restore adjust the counters too.

-- +goose StatementBegin
CREATE FUNCTION group_members_count_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE groups g SET member_count = g.member_count + d.n
    FROM (SELECT nt.group_id, count(*) AS n FROM new_rows nt
          JOIN users u ON u.id = nt.user_id AND u.deleted_at IS NULL
          GROUP BY nt.group_id) d
    WHERE g.id = d.group_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION group_members_count_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE groups g SET member_count = g.member_count - d.n
    FROM (SELECT ot.group_id, count(*) AS n FROM old_rows ot
          JOIN users u ON u.id = ot.user_id AND u.deleted_at IS NULL
          GROUP BY ot.group_id) d
    WHERE g.id = d.group_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER group_members_count_ins AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION group_members_count_ins();
CREATE TRIGGER group_members_count_del AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION group_members_count_del();

-- +goose StatementBegin
CREATE FUNCTION user_roles_count_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE roles r SET user_count = r.user_count + d.n
    FROM (SELECT nt.role_id, count(*) AS n FROM new_rows nt
          JOIN users u ON u.id = nt.user_id AND u.deleted_at IS NULL
          GROUP BY nt.role_id) d
    WHERE r.id = d.role_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION user_roles_count_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE roles r SET user_count = r.user_count - d.n
    FROM (SELECT ot.role_id, count(*) AS n FROM old_rows ot
          JOIN users u ON u.id = ot.user_id AND u.deleted_at IS NULL
          GROUP BY ot.role_id) d
    WHERE r.id = d.role_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER user_roles_count_ins AFTER INSERT ON user_roles
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_roles_count_ins();
CREATE TRIGGER user_roles_count_del AFTER DELETE ON user_roles
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION user_roles_count_del();

-- A soft delete removes the user from every count; a restore puts them back.
-- A hard delete of a still-live user is handled before the cascade removes
-- the relation rows (the AFTER DELETE triggers above then see no live user).
-- +goose StatementBegin
CREATE FUNCTION users_liveness_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.deleted_at IS NOT NULL THEN RETURN OLD; END IF;
        delta := -1;
    ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        delta := -1;
    ELSIF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN
        delta := 1;
    ELSE
        RETURN NEW;
    END IF;
    UPDATE groups g SET member_count = g.member_count + delta
    FROM group_members gm WHERE gm.user_id = OLD.id AND g.id = gm.group_id;
    UPDATE roles r SET user_count = r.user_count + delta
    FROM user_roles ur WHERE ur.user_id = OLD.id AND r.id = ur.role_id;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER users_liveness_counts_upd BEFORE UPDATE OF deleted_at ON users
    FOR EACH ROW EXECUTE FUNCTION users_liveness_counts();
CREATE TRIGGER users_liveness_counts_del BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_liveness_counts();

-- +goose Down
DROP TABLE group_members;
DROP TABLE user_roles;
DROP TABLE groups;
DROP TABLE roles;
DROP TABLE users;
DROP FUNCTION users_liveness_counts();
DROP FUNCTION user_roles_count_ins();
DROP FUNCTION user_roles_count_del();
DROP FUNCTION group_members_count_ins();
DROP FUNCTION group_members_count_del();
