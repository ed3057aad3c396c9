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

func userConnection(w db.Window[model.User], count model.Counter) *model.UserConnection {
	c := &model.UserConnection{Edges: make([]*model.UserEdge, len(w.Rows)), PageInfo: &w.PageInfo, Count: count}
	for i := range w.Rows {
		c.Edges[i] = &model.UserEdge{Cursor: w.Cursors[i], Node: &w.Rows[i]}
	}
	return c
}

func roleConnection(w db.Window[model.Role], count model.Counter) *model.RoleConnection {
	c := &model.RoleConnection{Edges: make([]*model.RoleEdge, len(w.Rows)), PageInfo: &w.PageInfo, Count: count}
	for i := range w.Rows {
		c.Edges[i] = &model.RoleEdge{Cursor: w.Cursors[i], Node: &w.Rows[i]}
	}
	return c
}

func groupConnection(w db.Window[model.Group], count model.Counter) *model.GroupConnection {
	c := &model.GroupConnection{Edges: make([]*model.GroupEdge, len(w.Rows)), PageInfo: &w.PageInfo, Count: count}
	for i := range w.Rows {
		c.Edges[i] = &model.GroupEdge{Cursor: w.Cursors[i], Node: &w.Rows[i]}
	}
	return c
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
	u, err := r.loaders(ctx).userByID.Load(ctx, colKey{ID: id, Cols: columnsAt(ctx, userType, nil)})()
	if u != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchUsers(ctx, []uuid.UUID{id}, nil)
	}
	return nilIfNotFound(u, err)
}

func (r *Resolver) loadRole(ctx context.Context, id uuid.UUID) (*model.Role, error) {
	ro, err := r.loaders(ctx).roleByID.Load(ctx, colKey{ID: id, Cols: columnsAt(ctx, roleType, nil)})()
	if ro != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchRoles(ctx, []uuid.UUID{id}, nil)
	}
	return nilIfNotFound(ro, err)
}

func (r *Resolver) loadGroup(ctx context.Context, id uuid.UUID) (*model.Group, error) {
	g, err := r.loaders(ctx).groupByID.Load(ctx, colKey{ID: id, Cols: columnsAt(ctx, groupType, nil)})()
	if g != nil && err == nil && !inBulkLookup(ctx) {
		r.prefetchGroups(ctx, []uuid.UUID{id}, nil)
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
