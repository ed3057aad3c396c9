package db

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/usergraph/usergraph/model"
)

// UserStore reads and writes users. Soft-deleted users are invisible to every
// method except Restore.
type UserStore struct {
	db   *gorm.DB
	rare *rareSearches // nil inside a transaction
}

// userSearchExpr must match the expression of users_search_trgm_idx exactly,
// or PostgreSQL cannot use the trigram index.
const userSearchExpr = "(u.email || ' ' || lower(u.username) || ' ' || lower(u.display_name))"

// searchPattern is the LIKE pattern of a search term: a substring, any case.
func searchPattern(term string) string { return "%" + escapeLike(strings.ToLower(term)) + "%" }

// UserOrder is a validated sort order of user listings.
type UserOrder struct {
	Field     model.UserOrderField
	Direction model.OrderDirection
}

func (o UserOrder) key() sortKey {
	k := sortKey{Tag: "users/" + string(o.Field), IDCol: "u.id"}
	switch o.Field {
	case model.UserOrderEmail:
		k.Column = "u.email"
	case model.UserOrderUsername:
		k.Column = "u.username"
	case model.UserOrderDisplayName:
		k.Column = "u.display_name"
	default:
		k.Tag, k.Column, k.Time = "users/CREATED_AT", "u.created_at", true
	}
	return k
}

func (o UserOrder) column() Columns {
	switch o.Field {
	case model.UserOrderEmail:
		return UserEmail
	case model.UserOrderUsername:
		return UserUsername
	case model.UserOrderDisplayName:
		return UserDisplayName
	}
	return UserCreatedAt
}

func (o UserOrder) value(u *model.User) (any, uuid.UUID) {
	switch o.Field {
	case model.UserOrderEmail:
		return u.Email, u.ID
	case model.UserOrderUsername:
		return u.Username, u.ID
	case model.UserOrderDisplayName:
		return u.DisplayName, u.ID
	}
	return u.CreatedAt, u.ID
}

// PageTag is the cursor tag of the listing in this order, for ParsePage.
func (o UserOrder) PageTag() string { return o.key().Tag }

// usersAsU is the FROM of user listings. gorm's Table("users AS u") would
// find the alias with a regular expression on every call (13 KB of garbage
// per page of users).
var usersAsU = clause.From{Tables: []clause.Table{{Name: "users", Alias: "u", Raw: true}}}

// filtered returns the live users matching f, aliased u.
func (s *UserStore) filtered(ctx context.Context, f model.UserFilter) *gorm.DB {
	q := s.db.WithContext(ctx).Table("users").Clauses(usersAsU).Where("u.deleted_at IS NULL")
	if len(f.Statuses) > 0 {
		q = q.Where("u.status IN ?", f.Statuses)
	}
	if f.RoleID != nil {
		q = q.Where("EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = ?)", *f.RoleID)
	}
	if f.GroupID != nil {
		q = q.Where("EXISTS (SELECT 1 FROM group_members gm WHERE gm.user_id = u.id AND gm.group_id = ?)", *f.GroupID)
	}
	if f.Search != "" {
		q = q.Where(userSearchExpr+" LIKE ?", searchPattern(f.Search))
	}
	if f.CreatedAfter != nil {
		q = q.Where("u.created_at > ?", *f.CreatedAfter)
	}
	if f.CreatedBefore != nil {
		q = q.Where("u.created_at < ?", *f.CreatedBefore)
	}
	if f.EmailVerified != nil {
		if *f.EmailVerified {
			q = q.Where("u.email_verified_at IS NOT NULL")
		} else {
			q = q.Where("u.email_verified_at IS NULL")
		}
	}
	return q
}

// List returns one page of the live users matching f, reading only cols.
func (s *UserStore) List(ctx context.Context, cols Columns, f model.UserFilter, o UserOrder, p Page) (Window[model.User], error) {
	if f.Search != "" {
		return s.search(ctx, cols, f, o, p)
	}
	q, err := s.listQuery(ctx, cols, f, o, p)
	if err != nil {
		return Window[model.User]{}, err
	}
	rows, err := s.rows(q, cols, o, p)
	if err != nil {
		return Window[model.User]{}, translate("error listing users", err)
	}
	return window(rows, p, o.key(), o.value), nil
}

func (s *UserStore) rows(q *gorm.DB, cols Columns, o UserOrder, p Page) ([]model.User, error) {
	cols |= o.column()
	return scanRows(q, p.Limit+1, func(u *model.User) []any { return bindUser(u, cols, nil) })
}

// searchWalk is how many users, in the page's order, a search reads before
// it falls back on the trigram index.
//
// PostgreSQL guesses how many users a LIKE '%term%' matches from the term's
// length alone, and a wrong guess is slow at a million users: it takes
// "4242" for common and walks the whole creation order looking for a rare
// term (650 ms), and takes "hopper" for rare and sorts 33,000 matches
// (300 ms). So a search does not let it guess. It walks the order for at
// most searchWalk users: a term that fills the page there is common enough
// for walking to be the fast way, and the page is done in one statement. A
// term that does not is rare (fewer than one match in 40 users), so its
// matches are few, and the second statement collects them through the
// trigram index and sorts them. The same search again skips the walk
// (rareSearches).
const searchWalk = 2000

// search is List for a search: see searchWalk.
func (s *UserStore) search(ctx context.Context, cols Columns, f model.UserFilter, o UserOrder, p Page) (Window[model.User], error) {
	walk, collect, err := s.searchQueries(ctx, cols, f, o, p)
	if err != nil {
		return Window[model.User]{}, err
	}
	var rows []model.User
	key := searchKey(f, o, p)
	if s.rare.known(key) {
		rows, err = s.rows(collect, cols, o, p)
	} else if rows, err = s.rows(walk, cols, o, p); err == nil && len(rows) <= p.Limit {
		s.rare.remember(key)
		rows, err = s.rows(collect, cols, o, p)
	}
	if err != nil {
		return Window[model.User]{}, translate("error searching users", err)
	}
	return window(rows, p, o.key(), o.value), nil
}

// searchQueries builds search's two statements; tests EXPLAIN them.
func (s *UserStore) searchQueries(ctx context.Context, cols Columns, f model.UserFilter, o UserOrder, p Page) (walk, collect *gorm.DB, err error) {
	sk, err := p.seek(o.key(), o.Direction)
	if err != nil {
		return nil, nil, err
	}
	keyset, orderBy, limit := sk.where, sk.orderBy, sk.limit
	list := (cols | o.column()).list("u", userColumnNames)
	others := f
	others.Search = ""
	walked := keyset(s.filtered(ctx, others).Select("u.*")).Order(orderBy).Clauses(pageLimit(searchWalk))
	walk = s.db.WithContext(ctx).Table("(?) AS u", walked).Select(list).
		Where(userSearchExpr+" LIKE ?", searchPattern(f.Search)).Order(orderBy).Clauses(pageLimit(limit))
	// MATERIALIZED: all the matches first, from the trigram index, so that
	// PostgreSQL cannot walk the order instead. They carry the selected
	// columns, read while the index's matches are rechecked, so that no
	// match is looked up a second time by id.
	matches := keyset(s.filtered(ctx, f).Select(list))
	collect = s.db.WithContext(ctx).Raw("WITH u AS MATERIALIZED (?) SELECT * FROM u ORDER BY "+
		orderBy+" LIMIT "+strconv.Itoa(limit), matches)
	return walk, collect, nil
}

// listQuery builds List's statement without a search; tests EXPLAIN it.
func (s *UserStore) listQuery(ctx context.Context, cols Columns, f model.UserFilter, o UserOrder, p Page) (*gorm.DB, error) {
	sk, err := p.seek(o.key(), o.Direction)
	if err != nil {
		return nil, err
	}
	q := sk.where(s.filtered(ctx, f).Select((cols | o.column()).list("u", userColumnNames)))
	return q.Order(sk.orderBy).Clauses(pageLimit(sk.limit)), nil
}

// Count counts the live users matching f.
func (s *UserStore) Count(ctx context.Context, f model.UserFilter) (int64, error) {
	var n int64
	if err := s.filtered(ctx, f).Count(&n).Error; err != nil {
		return 0, translate("error counting users", err)
	}
	return n, nil
}

// ByIDs returns the live users with the given ids, reading only cols, in no
// particular order; missing ids are simply absent.
func (s *UserStore) ByIDs(ctx context.Context, cols Columns, ids []uuid.UUID) ([]model.User, error) {
	rows, err := scanRows(s.db.WithContext(ctx).Raw(
		"SELECT "+cols.list("u", userColumnNames)+" FROM users u WHERE u.id = ANY(?::uuid[]) AND u.deleted_at IS NULL",
		uuidList(ids)), len(ids), func(u *model.User) []any { return bindUser(u, cols, nil) })
	return rows, translate("error loading users", err)
}

// ByEmail finds a live user by email address, ignoring case.
func (s *UserStore) ByEmail(ctx context.Context, cols Columns, email string) (*model.User, error) {
	return s.findOne(ctx, cols, "u.email = ?", normalizeEmail(email))
}

// ByUsername finds a live user by username, ignoring case.
func (s *UserStore) ByUsername(ctx context.Context, cols Columns, username string) (*model.User, error) {
	return s.findOne(ctx, cols, "lower(u.username) = lower(?)", username)
}

// ByID finds a live user by id.
func (s *UserStore) ByID(ctx context.Context, cols Columns, id uuid.UUID) (*model.User, error) {
	return s.findOne(ctx, cols, "u.id = ?", uuidArg(id))
}

// findOne scans by hand like the hot batch reads: logins and mutations look
// users up one at a time, and gorm's reflective scan would be most of a
// lookup's cost.
func (s *UserStore) findOne(ctx context.Context, cols Columns, cond string, arg any) (*model.User, error) {
	rows, err := scanRows(s.db.WithContext(ctx).Raw(
		"SELECT "+cols.list("u", userColumnNames)+" FROM users u WHERE u.deleted_at IS NULL AND "+cond+" LIMIT 1", arg),
		1, func(u *model.User) []any { return bindUser(u, cols, nil) })
	if err != nil {
		return nil, translate("error finding user", err)
	}
	if len(rows) == 0 {
		return nil, model.NotFound("user")
	}
	return &rows[0], nil
}

// Create inserts a user. A taken email or username is a CONFLICT naming the
// field, also when two requests race: the unique indexes decide.
func (s *UserStore) Create(ctx context.Context, nu model.NewUser, now time.Time) (*model.User, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now = now.Truncate(time.Microsecond) // what PostgreSQL stores, so the payload matches later reads
	u := &model.User{
		ID: id, Email: normalizeEmail(nu.Email), Username: nu.Username, DisplayName: nu.DisplayName,
		Status: nu.Status, CreatedAt: now, UpdatedAt: now,
	}
	if u.Status == "" {
		u.Status = model.UserStatusActive
	}
	if err := s.db.WithContext(ctx).Create(u).Error; err != nil {
		return nil, translate("error creating user", err)
	}
	return u, nil
}

// Update applies a partial update to a live user and returns it whole.
func (s *UserStore) Update(ctx context.Context, id uuid.UUID, up model.UserUpdate, now time.Time) (*model.User, error) {
	set := map[string]any{"updated_at": now}
	if up.Email != nil {
		set["email"] = normalizeEmail(*up.Email)
	}
	if up.Username != nil {
		set["username"] = *up.Username
	}
	if up.DisplayName != nil {
		set["display_name"] = *up.DisplayName
	}
	if up.Status != nil {
		set["status"] = *up.Status
	}
	var rows []model.User
	res := s.db.WithContext(ctx).Model(&rows).Clauses(returningAll).
		Where("id = ? AND deleted_at IS NULL", id).Updates(set)
	if res.Error != nil {
		return nil, translate("error updating user", res.Error)
	}
	if len(rows) == 0 {
		return nil, model.NotFound("user")
	}
	return &rows[0], nil
}

// SoftDelete hides a live user from everything until Restore.
func (s *UserStore) SoftDelete(ctx context.Context, id uuid.UUID, now time.Time) error {
	res := s.db.WithContext(ctx).Exec("UPDATE users SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL", now, now, id)
	if res.Error != nil {
		return translate("error deleting user", res.Error)
	}
	if res.RowsAffected == 0 {
		return model.NotFound("user")
	}
	return nil
}

// DeleteSelf soft-deletes a user at their own request, to be purged after
// purgeAfter unless they log in before (CancelDeletion).
func (s *UserStore) DeleteSelf(ctx context.Context, id uuid.UUID, now, purgeAfter time.Time) error {
	res := s.db.WithContext(ctx).Exec("UPDATE users SET deleted_at = ?, purge_after = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
		now, purgeAfter, now, id)
	if res.Error != nil {
		return translate("error deleting account", res.Error)
	}
	if res.RowsAffected == 0 {
		return model.NotFound("user")
	}
	return nil
}

// CancelDeletion brings back a self-deleted user inside the grace period.
func (s *UserStore) CancelDeletion(ctx context.Context, id uuid.UUID, now time.Time) error {
	return translate("error cancelling deletion", s.db.WithContext(ctx).Exec(
		"UPDATE users SET deleted_at = NULL, purge_after = NULL, updated_at = ? WHERE id = ? AND purge_after > ?", now, id, now).Error)
}

// Restore brings a soft-deleted user back.
func (s *UserStore) Restore(ctx context.Context, id uuid.UUID, now time.Time) (*model.User, error) {
	var rows []model.User
	err := s.db.WithContext(ctx).Raw("UPDATE users SET deleted_at = NULL, purge_after = NULL, updated_at = ? WHERE id = ? AND deleted_at IS NOT NULL RETURNING *", now, id).
		Scan(&rows).Error
	if err != nil {
		return nil, translate("error restoring user", err)
	}
	if len(rows) == 0 {
		return nil, model.NotFound("deleted user")
	}
	return &rows[0], nil
}

func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// escapeLike makes s match literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// MarkEmailVerified records that the user proved they own their address.
func (s *UserStore) MarkEmailVerified(ctx context.Context, id uuid.UUID, now time.Time) error {
	return translate("error verifying email", s.db.WithContext(ctx).
		Exec("UPDATE users SET email_verified_at = coalesce(email_verified_at, ?) WHERE id = ?", now, id).Error)
}

// RelationIDs returns the groups and roles of a user: those whose member
// and user counts change when the user disappears or returns.
func (s *UserStore) RelationIDs(ctx context.Context, id uuid.UUID) (groups, roles []uuid.UUID, err error) {
	if err := s.db.WithContext(ctx).Raw("SELECT group_id FROM group_members WHERE user_id = ?", id).Scan(&groups).Error; err != nil {
		return nil, nil, translate("error reading memberships", err)
	}
	if err := s.db.WithContext(ctx).Raw("SELECT role_id FROM user_roles WHERE user_id = ?", id).Scan(&roles).Error; err != nil {
		return nil, nil, translate("error reading roles", err)
	}
	return groups, roles, nil
}
