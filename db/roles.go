package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// RoleStore reads and writes roles and who holds them.
type RoleStore struct {
	db *gorm.DB
}

// Cursor tags of the role lists.
const (
	RolesList     = "roles"
	RoleUsersList = "role.users/ASSIGNED_AT"
)

func roleColumns(cols Columns, o NamedOrder) Columns {
	if o.Field == model.NamedOrderCreatedAt {
		return cols | RoleCreatedAt
	}
	return cols | RoleName
}

// List returns one page of roles.
func (s *RoleStore) List(ctx context.Context, cols Columns, o NamedOrder, p Page) (Window[model.Role], error) {
	key := o.key(RolesList, "r")
	sk, err := p.seek(key, o.Direction)
	if err != nil {
		return Window[model.Role]{}, err
	}
	cols = roleColumns(cols, o)
	q := s.db.WithContext(ctx).Table("roles AS r").Select(cols.list("r", roleColumnNames))
	q = sk.where(q)
	rows, err := scanRows(q.Order(sk.orderBy).Clauses(pageLimit(sk.limit)), sk.limit, func(r *model.Role) []any { return bindRole(r, cols, nil) })
	if err != nil {
		return Window[model.Role]{}, translate("error listing roles", err)
	}
	return window(rows, p, key, func(r *model.Role) (any, uuid.UUID) { return o.namedValue(r.Name, r.CreatedAt, r.ID) }), nil
}

// Count counts all roles.
func (s *RoleStore) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Table("roles").Count(&n).Error
	return n, translate("error counting roles", err)
}

// ByIDs returns the roles with the given ids, in no particular order.
func (s *RoleStore) ByIDs(ctx context.Context, cols Columns, ids []uuid.UUID) ([]model.Role, error) {
	rows, err := scanRows(s.db.WithContext(ctx).Raw("SELECT "+cols.list("r", roleColumnNames)+" FROM roles r WHERE r.id = ANY(?::uuid[])", uuidList(ids)),
		len(ids), func(r *model.Role) []any { return bindRole(r, cols, nil) })
	return rows, translate("error loading roles", err)
}

// UserRole is a role held by a user.
type UserRole struct {
	UserID     uuid.UUID `gorm:"column:user_id"`
	model.Role `gorm:"embedded"`
}

// OfUsers returns the roles of each user, ordered by user then role name:
// one statement for any number of users.
func (s *RoleStore) OfUsers(ctx context.Context, cols Columns, userIDs []uuid.UUID) ([]UserRole, error) {
	cols |= RoleName
	rows, err := scanRows(s.db.WithContext(ctx).Raw(
		"SELECT ur.user_id, "+cols.list("r", roleColumnNames)+
			" FROM user_roles ur JOIN roles r ON r.id = ur.role_id"+
			" WHERE ur.user_id = ANY(?::uuid[]) ORDER BY ur.user_id, r.name, r.id", uuidList(userIDs)),
		2*len(userIDs), func(ur *UserRole) []any { return bindRole(&ur.Role, cols, []any{&ur.UserID}) })
	return rows, translate("error loading roles of users", err)
}

// RoleHolder is one user holding a role, for Role.users.
type RoleHolder struct {
	RoleID     uuid.UUID `gorm:"column:parent_id"`
	AssignedAt time.Time `gorm:"column:assigned_at"`
	model.User `gorm:"embedded"`
}

// Holders returns one page of the live holders of each role, by assignment
// time: one statement for any number of roles (a LATERAL join per role).
func (s *RoleStore) Holders(ctx context.Context, cols Columns, roleIDs []uuid.UUID, p Page) (map[uuid.UUID]Window[RoleHolder], error) {
	key := sortKey{Tag: RoleUsersList, Column: "ur.assigned_at", IDCol: "ur.user_id", Time: true}
	return lateralPages(ctx, s.db, roleIDs, p, key, model.Asc,
		"ur.assigned_at, "+cols.list("u", userColumnNames),
		"user_roles ur JOIN users u ON u.id = ur.user_id AND u.deleted_at IS NULL",
		"ur.role_id = p.id",
		func(h *RoleHolder) []any { return bindUser(&h.User, cols, []any{&h.RoleID, &h.AssignedAt}) },
		func(h *RoleHolder) uuid.UUID { return h.RoleID },
		func(h *RoleHolder) (any, uuid.UUID) { return h.AssignedAt, h.User.ID },
		"error loading role holders")
}

// Create inserts a role.
func (s *RoleStore) Create(ctx context.Context, nr model.NewRole, now time.Time) (*model.Role, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now = now.Truncate(time.Microsecond) // what PostgreSQL stores, so the payload matches later reads
	r := &model.Role{ID: id, Name: nr.Name, Description: nr.Description, Permissions: pq.StringArray(nr.Permissions),
		CreatedAt: now, UpdatedAt: now}
	if r.Permissions == nil {
		r.Permissions = pq.StringArray{}
	}
	if err := s.db.WithContext(ctx).Create(r).Error; err != nil {
		return nil, translate("error creating role", err)
	}
	return r, nil
}

// Update applies a partial update and returns the role whole.
func (s *RoleStore) Update(ctx context.Context, id uuid.UUID, up model.RoleUpdate, now time.Time) (*model.Role, error) {
	set := map[string]any{"updated_at": now}
	if up.Name != nil {
		set["name"] = *up.Name
	}
	if up.Description != nil {
		set["description"] = *up.Description
	}
	if up.Permissions != nil {
		set["permissions"] = pq.StringArray(*up.Permissions)
	}
	var rows []model.Role
	res := s.db.WithContext(ctx).Model(&rows).Clauses(returningAll).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return nil, translate("error updating role", res.Error)
	}
	if len(rows) == 0 {
		return nil, model.NotFound("role")
	}
	return &rows[0], nil
}

// Delete removes a role and every grant of it.
func (s *RoleStore) Delete(ctx context.Context, id uuid.UUID) error {
	res := s.db.WithContext(ctx).Exec("DELETE FROM roles WHERE id = ?", id)
	if res.Error != nil {
		return translate("error deleting role", res.Error)
	}
	if res.RowsAffected == 0 {
		return model.NotFound("role")
	}
	return nil
}

// Assign grants a role to a live user; granting it again changes nothing.
func (s *RoleStore) Assign(ctx context.Context, userID, roleID uuid.UUID, now time.Time) error {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO user_roles (user_id, role_id, assigned_at)
		SELECT u.id, r.id, ? FROM users u, roles r
		WHERE u.id = ? AND u.deleted_at IS NULL AND r.id = ?
		ON CONFLICT DO NOTHING`, now, userID, roleID)
	if res.Error != nil {
		return translate("error assigning role", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	return s.explainMissing(ctx, userID, roleID)
}

// Revoke takes a role away; NOT_FOUND when the user does not hold it.
func (s *RoleStore) Revoke(ctx context.Context, userID, roleID uuid.UUID) error {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM user_roles ur USING users u
		WHERE ur.user_id = ? AND ur.role_id = ? AND u.id = ur.user_id AND u.deleted_at IS NULL`, userID, roleID)
	if res.Error != nil {
		return translate("error revoking role", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if err := s.explainMissing(ctx, userID, roleID); err != nil {
		return err
	}
	return model.NotFound("role assignment")
}

// explainMissing tells which of user and role does not exist, or nil when
// both do.
func (s *RoleStore) explainMissing(ctx context.Context, userID, roleID uuid.UUID) error {
	var found struct {
		User bool `gorm:"column:u"`
		Role bool `gorm:"column:r"`
	}
	err := s.db.WithContext(ctx).Raw(`SELECT
		EXISTS (SELECT 1 FROM users WHERE id = ? AND deleted_at IS NULL) AS u,
		EXISTS (SELECT 1 FROM roles WHERE id = ?) AS r`, userID, roleID).Scan(&found).Error
	switch {
	case err != nil:
		return translate("error checking role assignment", err)
	case !found.User:
		return model.NotFound("user")
	case !found.Role:
		return model.NotFound("role")
	}
	return nil
}

// AssignByName grants the role called name, if it exists (new accounts get
// the "member" role this way).
func (s *RoleStore) AssignByName(ctx context.Context, userID uuid.UUID, name string, now time.Time) error {
	return translate("error assigning role", s.db.WithContext(ctx).Exec(`INSERT INTO user_roles (user_id, role_id, assigned_at)
		SELECT ?, r.id, ? FROM roles r WHERE lower(r.name) = lower(?) ON CONFLICT DO NOTHING`, userID, now, name).Error)
}

// EnsureBuiltin creates the built-in roles (admin, manager, member) when
// they are missing; existing roles are left as they are.
func (s *RoleStore) EnsureBuiltin(ctx context.Context, now time.Time) error {
	for _, r := range model.BuiltinRoles {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if err := s.db.WithContext(ctx).Exec(`INSERT INTO roles (id, name, description, permissions, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, r.Name, r.Description, pq.StringArray(r.Permissions), now, now).Error; err != nil {
			return translate("error creating built-in roles", err)
		}
	}
	return nil
}

// adminGuardLock serializes the changes that could remove the last
// administrator, so two admins demoting each other at the same moment
// cannot both succeed.
const adminGuardLock = 7446355

// LockAdmins takes the administrators lock for the rest of the transaction.
func (s *RoleStore) LockAdmins(ctx context.Context) error {
	return translate("error locking administrators", s.db.WithContext(ctx).Exec("SELECT pg_advisory_xact_lock(?)", adminGuardLock).Error)
}

// CountAdmins counts the live, active users holding permission perm (the
// one that can grant every other).
func (s *RoleStore) CountAdmins(ctx context.Context, perm string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT count(DISTINCT u.id) FROM users u
		JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
		WHERE u.deleted_at IS NULL AND u.status = 'ACTIVE' AND ? = ANY(r.permissions)`, perm).Scan(&n).Error
	return n, translate("error counting administrators", err)
}
