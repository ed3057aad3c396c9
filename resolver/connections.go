package resolver

import (
	"context"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
)

func pageArgsOf(first *int, after *string, last *int, before *string) db.PageArgs {
	return db.PageArgs{First: first, After: after, Last: last, Before: before}
}

// edgesOf makes a page's n edges in one allocation, filled by fill, and
// returns pointers to them (what the connection types hold). Nested pages
// make one set of edges per parent, so this is paid per parent.
func edgesOf[E any](n int, fill func(i int, e *E)) []*E {
	edges := make([]E, n)
	out := make([]*E, n)
	for i := range edges {
		fill(i, &edges[i])
		out[i] = &edges[i]
	}
	return out
}

func userConnection(w db.Window[model.User], count model.Counter) *model.UserConnection {
	return &model.UserConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.UserEdge) { *e = model.UserEdge{Cursor: w.Cursor(i), Node: &w.Rows[i]} })}
}

func roleConnection(w db.Window[model.Role], count model.Counter) *model.RoleConnection {
	return &model.RoleConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.RoleEdge) { *e = model.RoleEdge{Cursor: w.Cursor(i), Node: &w.Rows[i]} })}
}

func groupConnection(w db.Window[model.Group], count model.Counter) *model.GroupConnection {
	return &model.GroupConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.GroupEdge) { *e = model.GroupEdge{Cursor: w.Cursor(i), Node: &w.Rows[i]} })}
}

// userGroupConnection is a page of a user's groups.
func userGroupConnection(w db.Window[db.UserGroup], count model.Counter) *model.UserGroupConnection {
	return &model.UserGroupConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.UserGroupEdge) {
			ug := &w.Rows[i]
			*e = model.UserGroupEdge{Cursor: w.Cursor(i), Node: &ug.Group, Role: ug.MemberRole, JoinedAt: ug.JoinedAt}
		})}
}

// groupMemberConnection is a page of a group's members.
func groupMemberConnection(w db.Window[db.GroupMember], count model.Counter) *model.GroupMemberConnection {
	return &model.GroupMemberConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.GroupMemberEdge) {
			m := &w.Rows[i]
			*e = model.GroupMemberEdge{Cursor: w.Cursor(i), Node: &m.User, Role: m.MemberRole, JoinedAt: m.JoinedAt}
		})}
}

// roleHolderConnection is a page of a role's holders.
func roleHolderConnection(w db.Window[db.RoleHolder], count model.Counter) *model.UserConnection {
	return &model.UserConnection{PageInfo: &w.PageInfo, Count: count,
		Edges: edgesOf(len(w.Rows), func(i int, e *model.UserEdge) { *e = model.UserEdge{Cursor: w.Cursor(i), Node: &w.Rows[i].User} })}
}

func userOrder(o *graph.UserOrder) db.UserOrder {
	if o == nil {
		return db.UserOrder{Field: model.UserOrderCreatedAt, Direction: model.Asc}
	}
	return db.UserOrder{Field: o.Field, Direction: o.Direction}
}

func namedOrder(field *model.NamedOrderField, dir *model.OrderDirection) db.NamedOrder {
	o := db.NamedOrder{Field: model.NamedOrderName, Direction: model.Asc}
	if field != nil {
		o.Field = *field
	}
	if dir != nil {
		o.Direction = *dir
	}
	return o
}

func roleOrder(o *graph.RoleOrder) db.NamedOrder {
	if o == nil {
		return namedOrder(nil, nil)
	}
	return namedOrder(&o.Field, &o.Direction)
}

func groupOrder(o *graph.GroupOrder) db.NamedOrder {
	if o == nil {
		return namedOrder(nil, nil)
	}
	return namedOrder(&o.Field, &o.Direction)
}

// userFilter validates a filter and resolves its IDs.
func userFilter(f *graph.UserFilter) (model.UserFilter, error) {
	var out model.UserFilter
	if f == nil {
		return out, nil
	}
	out.Statuses = f.Status
	if f.Role != nil {
		id, err := model.ParseGlobalIDOf("filter.role", model.KindRole, *f.Role)
		if err != nil {
			return out, err
		}
		out.RoleID = &id
	}
	if f.Group != nil {
		id, err := model.ParseGlobalIDOf("filter.group", model.KindGroup, *f.Group)
		if err != nil {
			return out, err
		}
		out.GroupID = &id
	}
	if f.Search != nil {
		if err := model.ValidateText("filter.search", *f.Search, 3, 100); err != nil {
			return out, model.Invalid("filter.search", "search must be 3 to 100 characters")
		}
		out.Search = *f.Search
	}
	out.CreatedAfter, out.CreatedBefore, out.EmailVerified = f.CreatedAfter, f.CreatedBefore, f.EmailVerified
	return out, nil
}

// loadUser loads a live user through the operation's loader, reading the
// columns the current field selects; nil when there is none.
// It also prefetches the user's selected relations, so a lookup followed by
// its relations does not wait out a batch window per level.
func (r *Resolver) loadUser(ctx context.Context, id uuid.UUID) (*model.User, error) {
	u, err := r.loaders(ctx).userByID.load(ctx, colKey{ID: id, Cols: columnsAt(ctx, userType, onField)})
	if u != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchUsers(ctx, []uuid.UUID{id}, onField)
	}
	return nilIfNotFound(u, err)
}

func (r *Resolver) loadRole(ctx context.Context, id uuid.UUID) (*model.Role, error) {
	ro, err := r.loaders(ctx).roleByID.load(ctx, colKey{ID: id, Cols: columnsAt(ctx, roleType, onField)})
	if ro != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchRoles(ctx, []uuid.UUID{id}, onField)
	}
	return nilIfNotFound(ro, err)
}

func (r *Resolver) loadGroup(ctx context.Context, id uuid.UUID) (*model.Group, error) {
	g, err := r.loaders(ctx).groupByID.load(ctx, colKey{ID: id, Cols: columnsAt(ctx, groupType, onField)})
	if g != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchGroups(ctx, []uuid.UUID{id}, onField)
	}
	return nilIfNotFound(g, err)
}

// nilIfNotFound turns NOT_FOUND into a null result: lookups by ID answer
// null for an unknown object, as Relay's node field does.
func nilIfNotFound[T any](v *T, err error) (*T, error) {
	if model.ErrorCode(err) == model.CodeNotFound {
		return nil, nil
	}
	return v, err
}
