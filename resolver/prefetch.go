package resolver

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Prefetching: as soon as a resolver has a page of parents, it runs the
// batches their selected relations need, level by level down the selection,
// and primes the loaders with the results; the field resolvers then find
// every value cached. Each level is one statement per relation, whatever the
// page size, because the prefetch knows the level's complete key set: it
// does not depend on which keys happen to arrive within a loader's batch
// window, and it does not wait that window out.
//
// (Waiting is what the loaders alone would do: gqlgen resolves an object's
// plain fields such as edges before its resolver fields such as totalCount,
// and runs an object's only resolver field inline, so under load a level's
// keys straggle across several batch windows.) The loaders still serve
// every lookup a prefetch does not cover, such as user(id:) and node(id:).

// prefetchUsers prefetches the relations selected on the users the current
// field returns at.
func (r *Resolver) prefetchUsers(ctx context.Context, ids []uuid.UUID, at selectionPath) {
	r.prefetchUsersIn(ctx, ids, selectedOn(ctx, userType, at).fields)
}

// prefetchGroups prefetches the relations selected on groups.
func (r *Resolver) prefetchGroups(ctx context.Context, ids []uuid.UUID, at selectionPath) {
	r.prefetchGroupsIn(ctx, ids, selectedOn(ctx, groupType, at).fields)
}

// prefetchRoles prefetches the relations selected on roles.
func (r *Resolver) prefetchRoles(ctx context.Context, ids []uuid.UUID, at selectionPath) {
	r.prefetchRolesIn(ctx, ids, selectedOn(ctx, roleType, at).fields)
}

// prefetchUsersIn prefetches the relations among fields (selected on
// users); sibling relations run concurrently.
func (r *Resolver) prefetchUsersIn(ctx context.Context, ids []uuid.UUID, fields []graphql.CollectedField) {
	if len(ids) == 0 || !selectsRelation(fields) {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	var wg sync.WaitGroup
	for _, f := range fields {
		switch f.Name {
		case "roles":
			keys := colKeys(ids, columnsIn(op, f.Selections, roleType, onField))
			wg.Go(func() { l.rolesOfUser.fetch(ctx, keys) })
		case "groups":
			wg.Go(func() {
				prefetchPage(ctx, op, f, ids, l.groupsOfUser, groupType, orderArg(op, f),
					func(ids []uuid.UUID) { l.groupCount.fetch(ctx, ids) },
					func(g *db.UserGroup) uuid.UUID { return g.Group.ID },
					func(ids []uuid.UUID, fields []graphql.CollectedField) { r.prefetchGroupsIn(ctx, ids, fields) })
			})
		}
	}
	wg.Wait()
}

// prefetchGroupsIn prefetches the relations among fields (selected on
// groups).
func (r *Resolver) prefetchGroupsIn(ctx context.Context, ids []uuid.UUID, fields []graphql.CollectedField) {
	if len(ids) == 0 || !selectsRelation(fields) {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	var wg sync.WaitGroup
	for _, f := range fields {
		if f.Name == "members" {
			wg.Go(func() {
				prefetchPage(ctx, op, f, ids, l.membersOf, userType, db.NamedOrder{},
					func(ids []uuid.UUID) { l.groupByID.fetch(ctx, colKeys(ids, db.GroupMemberCount)) },
					func(m *db.GroupMember) uuid.UUID { return m.User.ID },
					func(ids []uuid.UUID, fields []graphql.CollectedField) { r.prefetchUsersIn(ctx, ids, fields) })
			})
		}
	}
	wg.Wait()
}

// prefetchRolesIn prefetches the relations among fields (selected on
// roles).
func (r *Resolver) prefetchRolesIn(ctx context.Context, ids []uuid.UUID, fields []graphql.CollectedField) {
	if len(ids) == 0 || !selectsRelation(fields) {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	var wg sync.WaitGroup
	for _, f := range fields {
		if f.Name == "users" {
			wg.Go(func() {
				prefetchPage(ctx, op, f, ids, l.holdersOf, userType, db.NamedOrder{},
					func(ids []uuid.UUID) { l.roleByID.fetch(ctx, colKeys(ids, db.RoleUserCount)) },
					func(h *db.RoleHolder) uuid.UUID { return h.User.ID },
					func(ids []uuid.UUID, fields []graphql.CollectedField) { r.prefetchUsersIn(ctx, ids, fields) })
			})
		}
	}
	wg.Wait()
}

// prefetchPage fetches one page of the connection field f for every parent
// (and the counts, when totalCount is selected), then calls below with the
// ids of every row found and the fields selected on f's nodes: the next
// level.
func prefetchPage[T any](ctx context.Context, op *graphql.OperationContext, f graphql.CollectedField, ids []uuid.UUID,
	b *batched[pageKey, db.Window[T]], nodes objectType, order db.NamedOrder,
	count func([]uuid.UUID), rowID func(*T) uuid.UUID, below func([]uuid.UUID, []graphql.CollectedField),
) {
	args, ok := connectionArgs(op, f)
	if !ok {
		return
	}
	var wg sync.WaitGroup
	if selects(op, f.Selections, "totalCount") {
		wg.Go(func() { count(ids) })
	}
	fields := objectFields(op, selectionsIn(op, f.Selections, pathsOf[onNodes]), nodes)
	var cols db.Columns
	for _, f := range fields {
		cols |= nodes.columns[f.Name]
	}
	noCursors := !selectsCursor(op, f.Selections)
	keys := make([]pageKey, len(ids))
	for i, id := range ids {
		keys[i] = pageKey{ID: id, Cols: cols, Args: args, Order: order, NoCursors: noCursors}
	}
	b.fetch(ctx, keys)
	if selectsRelation(fields) {
		below(childIDs(ctx, b, keys, rowID), fields)
	}
	wg.Wait()
}

// selectsRelation reports whether fields hold a field that prefetching
// loads (a relation): most selections hold none, and then there is nothing
// to collect.
func selectsRelation(fields []graphql.CollectedField) bool {
	for _, f := range fields {
		switch f.Name {
		case "roles", "groups", "members", "users":
			return true
		}
	}
	return false
}

// colKeys asks for cols of each of ids.
func colKeys(ids []uuid.UUID, cols db.Columns) []colKey {
	keys := make([]colKey, len(ids))
	for i, id := range ids {
		keys[i] = colKey{ID: id, Cols: cols}
	}
	return keys
}

// objectFields collects the fields selected on t in sels.
func objectFields(op *graphql.OperationContext, sels []ast.SelectionSet, t objectType) []graphql.CollectedField {
	var out []graphql.CollectedField
	for _, s := range sels {
		out = append(out, graphql.CollectFields(op, s, []string{t.name, "Node"})...)
	}
	return out
}

// childIDs returns the distinct ids of the rows cached for keys; keys that
// failed are skipped (their fields report the error).
func childIDs[T any](ctx context.Context, b *batched[pageKey, db.Window[T]], keys []pageKey, id func(*T) uuid.UUID) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, k := range keys {
		th, ok := b.cache.Get(ctx, k)
		if !ok {
			continue
		}
		w, err := th()
		if err != nil {
			continue
		}
		for i := range w.Rows {
			if c := id(&w.Rows[i]); !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func selects(op *graphql.OperationContext, sel ast.SelectionSet, name string) bool {
	for _, f := range graphql.CollectFields(op, sel, nil) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// connectionArgs reads first/after/last/before of a selected connection
// field the way the field's resolver will receive them. ok is false when
// they are not plain values (the resolver will then report the problem).
func connectionArgs(op *graphql.OperationContext, f graphql.CollectedField) (pageArgs, bool) {
	m := f.ArgumentMap(op.Variables)
	intArg := func(name string) (*int, bool) {
		switch v := m[name].(type) {
		case nil:
			return nil, true
		case int64:
			n := int(v)
			return &n, true
		case int:
			return &v, true
		default:
			return nil, false
		}
	}
	strArg := func(name string) (*string, bool) {
		switch v := m[name].(type) {
		case nil:
			return nil, true
		case string:
			return &v, true
		default:
			return nil, false
		}
	}
	first, ok1 := intArg("first")
	last, ok2 := intArg("last")
	after, ok3 := strArg("after")
	before, ok4 := strArg("before")
	return newPageArgs(first, after, last, before), ok1 && ok2 && ok3 && ok4
}

// orderArg reads a selected field's orderBy: {field, direction} argument.
func orderArg(op *graphql.OperationContext, f graphql.CollectedField) db.NamedOrder {
	m, _ := f.ArgumentMap(op.Variables)["orderBy"].(map[string]any)
	var field *model.NamedOrderField
	var dir *model.OrderDirection
	if s, ok := m["field"].(string); ok {
		v := model.NamedOrderField(s)
		field = &v
	}
	if s, ok := m["direction"].(string); ok {
		v := model.OrderDirection(s)
		dir = &v
	}
	return namedOrder(field, dir)
}

func idsOf[T any](rows []T, id func(*T) uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, len(rows))
	for i := range rows {
		out[i] = id(&rows[i])
	}
	return out
}
