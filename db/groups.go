package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/usergraph/usergraph/model"
)

// GroupStore reads and writes groups and their members.
type GroupStore struct {
	db *gorm.DB
}

// Cursor tags of the group lists.
const (
	GroupsList       = "groups"
	UserGroupsList   = "user.groups"
	GroupMembersList = "group.members/JOINED_AT"
)

func groupColumns(cols Columns, o NamedOrder) Columns {
	if o.Field == model.NamedOrderCreatedAt {
		return cols | GroupCreatedAt
	}
	return cols | GroupName
}

// List returns one page of groups.
func (s *GroupStore) List(ctx context.Context, cols Columns, o NamedOrder, p Page) (Window[model.Group], error) {
	key := o.key(GroupsList, "g")
	sk, err := p.seek(key, o.Direction)
	if err != nil {
		return Window[model.Group]{}, err
	}
	cols = groupColumns(cols, o)
	q := s.db.WithContext(ctx).Table("groups AS g").Select(cols.list("g", groupColumnNames))
	q = sk.where(q)
	rows, err := scanRows(q.Order(sk.orderBy).Clauses(pageLimit(sk.limit)), sk.limit, func(g *model.Group) []any { return bindGroup(g, cols, nil) })
	if err != nil {
		return Window[model.Group]{}, translate("error listing groups", err)
	}
	return window(rows, p, key, func(g *model.Group) (any, uuid.UUID) { return o.namedValue(g.Name, g.CreatedAt, g.ID) }), nil
}

// Count counts all groups.
func (s *GroupStore) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Table("groups").Count(&n).Error
	return n, translate("error counting groups", err)
}

// ByIDs returns the groups with the given ids, in no particular order.
func (s *GroupStore) ByIDs(ctx context.Context, cols Columns, ids []uuid.UUID) ([]model.Group, error) {
	rows, err := scanRows(s.db.WithContext(ctx).Raw("SELECT "+cols.list("g", groupColumnNames)+" FROM groups g WHERE g.id = ANY(?::uuid[])", uuidList(ids)),
		len(ids), func(g *model.Group) []any { return bindGroup(g, cols, nil) })
	return rows, translate("error loading groups", err)
}

// UserGroup is a group as one of a user's groups.
type UserGroup struct {
	UserID      uuid.UUID             `gorm:"column:parent_id"`
	MemberRole  model.GroupMemberRole `gorm:"column:member_role"`
	JoinedAt    time.Time             `gorm:"column:joined_at"`
	model.Group `gorm:"embedded"`
}

// OfUsers returns one page of each user's groups: one statement for any
// number of users.
func (s *GroupStore) OfUsers(ctx context.Context, cols Columns, userIDs []uuid.UUID, o NamedOrder, p Page) (map[uuid.UUID]Window[UserGroup], error) {
	key := o.key(UserGroupsList, "g")
	cols = groupColumns(cols, o)
	return lateralPages(ctx, s.db, userIDs, p, key, o.Direction,
		"gm.role AS member_role, gm.joined_at, "+cols.list("g", groupColumnNames),
		// Each membership looks its group up by primary key. With a plain
		// join, PostgreSQL hashes the whole groups table once per user
		// when it is small enough to look cheap (a few hundred groups:
		// twice the cost at 100,000 users); OFFSET 0 keeps the subquery
		// from being flattened into that join.
		"group_members gm CROSS JOIN LATERAL (SELECT * FROM groups g0 WHERE g0.id = gm.group_id OFFSET 0) g",
		"gm.user_id = p.id",
		func(ug *UserGroup) []any {
			return bindGroup(&ug.Group, cols, []any{&ug.UserID, (*string)(&ug.MemberRole), &ug.JoinedAt})
		},
		func(ug *UserGroup) uuid.UUID { return ug.UserID },
		func(ug *UserGroup) (any, uuid.UUID) { return o.namedValue(ug.Name, ug.CreatedAt, ug.Group.ID) },
		"error loading groups of users")
}

// CountOfUsers counts the groups of each user.
func (s *GroupStore) CountOfUsers(ctx context.Context, userIDs []uuid.UUID) (map[uuid.UUID]int64, error) {
	var rows []struct {
		UserID uuid.UUID `gorm:"column:user_id"`
		N      int64     `gorm:"column:n"`
	}
	err := s.db.WithContext(ctx).Raw("SELECT user_id, count(*) AS n FROM group_members WHERE user_id = ANY(?::uuid[]) GROUP BY user_id",
		uuidList(userIDs)).Scan(&rows).Error
	if err != nil {
		return nil, translate("error counting groups of users", err)
	}
	out := make(map[uuid.UUID]int64, len(rows))
	for _, r := range rows {
		out[r.UserID] = r.N
	}
	return out, nil
}

// GroupMember is a user as one of a group's members.
type GroupMember struct {
	GroupID    uuid.UUID             `gorm:"column:parent_id"`
	MemberRole model.GroupMemberRole `gorm:"column:member_role"`
	JoinedAt   time.Time             `gorm:"column:joined_at"`
	model.User `gorm:"embedded"`
}

// Members returns one page of each group's live members, by join time: one
// statement for any number of groups.
func (s *GroupStore) Members(ctx context.Context, cols Columns, groupIDs []uuid.UUID, p Page) (map[uuid.UUID]Window[GroupMember], error) {
	key := sortKey{Tag: GroupMembersList, Column: "gm.joined_at", IDCol: "gm.user_id", Time: true}
	return lateralPages(ctx, s.db, groupIDs, p, key, model.Asc,
		"gm.role AS member_role, gm.joined_at, "+cols.list("u", userColumnNames),
		"group_members gm JOIN users u ON u.id = gm.user_id AND u.deleted_at IS NULL",
		"gm.group_id = p.id",
		func(m *GroupMember) []any {
			return bindUser(&m.User, cols, []any{&m.GroupID, (*string)(&m.MemberRole), &m.JoinedAt})
		},
		func(m *GroupMember) uuid.UUID { return m.GroupID },
		func(m *GroupMember) (any, uuid.UUID) { return m.JoinedAt, m.User.ID },
		"error loading group members")
}

// Create inserts a group.
func (s *GroupStore) Create(ctx context.Context, ng model.NewGroup, now time.Time) (*model.Group, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now = now.Truncate(time.Microsecond) // what PostgreSQL stores, so the payload matches later reads
	g := &model.Group{ID: id, Name: ng.Name, Description: ng.Description, CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(g).Error; err != nil {
		return nil, translate("error creating group", err)
	}
	return g, nil
}

// Update applies a partial update and returns the group whole.
func (s *GroupStore) Update(ctx context.Context, id uuid.UUID, up model.GroupUpdate, now time.Time) (*model.Group, error) {
	set := map[string]any{"updated_at": now}
	if up.Name != nil {
		set["name"] = *up.Name
	}
	if up.Description != nil {
		set["description"] = *up.Description
	}
	var rows []model.Group
	res := s.db.WithContext(ctx).Model(&rows).Clauses(returningAll).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return nil, translate("error updating group", res.Error)
	}
	if len(rows) == 0 {
		return nil, model.NotFound("group")
	}
	return &rows[0], nil
}

// Delete removes a group and its memberships.
func (s *GroupStore) Delete(ctx context.Context, id uuid.UUID) error {
	res := s.db.WithContext(ctx).Exec("DELETE FROM groups WHERE id = ?", id)
	if res.Error != nil {
		return translate("error deleting group", res.Error)
	}
	if res.RowsAffected == 0 {
		return model.NotFound("group")
	}
	return nil
}

// AddMember adds a live user to a group; CONFLICT when already a member.
func (s *GroupStore) AddMember(ctx context.Context, groupID, userID uuid.UUID, role model.GroupMemberRole, now time.Time) error {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO group_members (group_id, user_id, role, joined_at)
		SELECT g.id, u.id, ?, ? FROM groups g, users u
		WHERE g.id = ? AND u.id = ? AND u.deleted_at IS NULL`, role, now, groupID, userID)
	if res.Error != nil {
		return translate("error adding group member", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	return s.explainMissing(ctx, groupID, userID)
}

// RemoveMember removes a user from a group.
func (s *GroupStore) RemoveMember(ctx context.Context, groupID, userID uuid.UUID) error {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM group_members gm USING users u
		WHERE gm.group_id = ? AND gm.user_id = ? AND u.id = gm.user_id AND u.deleted_at IS NULL`, groupID, userID)
	if res.Error != nil {
		return translate("error removing group member", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if err := s.explainMissing(ctx, groupID, userID); err != nil {
		return err
	}
	return model.NotFound("group membership")
}

// SetMemberRole changes a member's role within the group.
func (s *GroupStore) SetMemberRole(ctx context.Context, groupID, userID uuid.UUID, role model.GroupMemberRole) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE group_members gm SET role = ? FROM users u
		WHERE gm.group_id = ? AND gm.user_id = ? AND u.id = gm.user_id AND u.deleted_at IS NULL`, role, groupID, userID)
	if res.Error != nil {
		return translate("error setting group member role", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	if err := s.explainMissing(ctx, groupID, userID); err != nil {
		return err
	}
	return model.NotFound("group membership")
}

func (s *GroupStore) explainMissing(ctx context.Context, groupID, userID uuid.UUID) error {
	var found struct {
		Group bool `gorm:"column:g"`
		User  bool `gorm:"column:u"`
	}
	err := s.db.WithContext(ctx).Raw(`SELECT
		EXISTS (SELECT 1 FROM groups WHERE id = ?) AS g,
		EXISTS (SELECT 1 FROM users WHERE id = ? AND deleted_at IS NULL) AS u`, groupID, userID).Scan(&found).Error
	switch {
	case err != nil:
		return translate("error checking group membership", err)
	case !found.Group:
		return model.NotFound("group")
	case !found.User:
		return model.NotFound("user")
	}
	return nil
}
