package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Prefetching: as soon as a resolver has a page of parents, it starts the
// loads their selected relations will need, so every key of a level joins
// one batch.
//
// Without this, the order in which gqlgen completes fields decides how keys
// are batched: gqlgen resolves an object's plain fields (edges) before its
// resolver fields (totalCount), and runs an object's only resolver field
// inline, so a parent whose subtree waits on a deeper loader issues its own
// loads a whole batch window later than its siblings, and the level splits
// into two statements. Loads started here are cached by the loaders; the
// field resolvers later pick up the same thunks.

// prefetchUsers starts the loads for the relations selected on users found
// at paths below the current field.
func (r *Resolver) prefetchUsers(ctx context.Context, ids []uuid.UUID, paths ...[]string) {
	r.prefetchUsersIn(ctx, ids, selectionsBelow(ctx, paths))
}

// prefetchGroups starts the loads for the relations selected on groups.
func (r *Resolver) prefetchGroups(ctx context.Context, ids []uuid.UUID, paths ...[]string) {
	r.prefetchGroupsIn(ctx, ids, selectionsBelow(ctx, paths))
}

// prefetchRoles starts the loads for the relations selected on roles.
func (r *Resolver) prefetchRoles(ctx context.Context, ids []uuid.UUID, paths ...[]string) {
	r.prefetchRolesIn(ctx, ids, selectionsBelow(ctx, paths))
}

// prefetchUsersIn starts the loads for the relations selected on users in
// sels. For a nested connection it also waits, in the background, for that
// level's batch and then prefetches the level below it for all parents at
// once, so deep levels stay one batch each however the goroutines that
// complete the fields are scheduled.
func (r *Resolver) prefetchUsersIn(ctx context.Context, ids []uuid.UUID, sels []ast.SelectionSet) {
	if len(ids) == 0 || len(sels) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range objectFields(op, sels, userType) {
		switch f.Name {
		case "roles":
			cols := columnsIn(op, f.Selections, roleType, nil)
			for _, id := range ids {
				l.rolesOfUser.Load(ctx, colKey{ID: id, Cols: cols})
			}
		case "groups":
			prefetchPage(ctx, op, f, ids, l.groupsOfUser, groupType, orderArg(op, f),
				func(id uuid.UUID) { l.groupCount.Load(ctx, id) },
				func(g *db.UserGroup) uuid.UUID { return g.Group.ID },
				func(ids []uuid.UUID, sels []ast.SelectionSet) { r.prefetchGroupsIn(ctx, ids, sels) })
		}
	}
}

// prefetchGroupsIn starts the loads for the relations selected on groups in
// sels, and the level below them (see prefetchUsersIn).
func (r *Resolver) prefetchGroupsIn(ctx context.Context, ids []uuid.UUID, sels []ast.SelectionSet) {
	if len(ids) == 0 || len(sels) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range objectFields(op, sels, groupType) {
		if f.Name == "members" {
			prefetchPage(ctx, op, f, ids, l.membersOf, userType, db.NamedOrder{},
				func(id uuid.UUID) { l.groupByID.Load(ctx, colKey{ID: id, Cols: db.GroupMemberCount}) },
				func(m *db.GroupMember) uuid.UUID { return m.User.ID },
				func(ids []uuid.UUID, sels []ast.SelectionSet) { r.prefetchUsersIn(ctx, ids, sels) })
		}
	}
}

// prefetchRolesIn starts the loads for the relations selected on roles in
// sels, and the level below them (see prefetchUsersIn).
func (r *Resolver) prefetchRolesIn(ctx context.Context, ids []uuid.UUID, sels []ast.SelectionSet) {
	if len(ids) == 0 || len(sels) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range objectFields(op, sels, roleType) {
		if f.Name == "users" {
			prefetchPage(ctx, op, f, ids, l.holdersOf, userType, db.NamedOrder{},
				func(id uuid.UUID) { l.roleByID.Load(ctx, colKey{ID: id, Cols: db.RoleUserCount}) },
				func(h *db.RoleHolder) uuid.UUID { return h.User.ID },
				func(ids []uuid.UUID, sels []ast.SelectionSet) { r.prefetchUsersIn(ctx, ids, sels) })
		}
	}
}

// prefetchPage starts one page load per parent for the connection field f,
// and its count when totalCount is selected; once that batch returns, it
// calls below with the ids of every row found and the selections of f's
// nodes, to start the next level.
func prefetchPage[T any](ctx context.Context, op *graphql.OperationContext, f graphql.CollectedField, ids []uuid.UUID,
	loader *dataloader.Loader[pageKey, db.Window[T]], nodes objectType, order db.NamedOrder,
	count func(uuid.UUID), rowID func(*T) uuid.UUID, below func([]uuid.UUID, []ast.SelectionSet),
) {
	args, ok := connectionArgs(op, f)
	if !ok {
		return
	}
	cols := columnsIn(op, f.Selections, nodes, connectionPaths...)
	counted := selects(op, f.Selections, "totalCount")
	thunks := make([]dataloader.Thunk[db.Window[T]], len(ids))
	for i, id := range ids {
		thunks[i] = loader.Load(ctx, pageKey{ID: id, Cols: cols, Args: args, Order: order})
		if counted {
			count(id)
		}
	}
	next := nodeSelections(op, f.Selections)
	go func() { below(childIDs(thunks, rowID), next) }()
}

// selectionsBelow returns the selection sets at each path below the current
// field.
func selectionsBelow(ctx context.Context, paths [][]string) []ast.SelectionSet {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return nil
	}
	op := graphql.GetOperationContext(ctx)
	var out []ast.SelectionSet
	for _, path := range paths {
		out = append(out, selectionsAt(op, fc.Field.Selections, path)...)
	}
	return out
}

// nodeSelections returns where a connection field selects its nodes.
func nodeSelections(op *graphql.OperationContext, sel ast.SelectionSet) []ast.SelectionSet {
	var out []ast.SelectionSet
	for _, path := range connectionPaths {
		out = append(out, selectionsAt(op, sel, path)...)
	}
	return out
}

// objectFields collects the fields selected on t in sels.
func objectFields(op *graphql.OperationContext, sels []ast.SelectionSet, t objectType) []graphql.CollectedField {
	var out []graphql.CollectedField
	for _, s := range sels {
		out = append(out, graphql.CollectFields(op, s, []string{t.name, "Node"})...)
	}
	return out
}

// childIDs waits for a level's loads and returns the distinct ids of the
// rows they found; failed loads are skipped (their fields report the error).
func childIDs[T any](thunks []dataloader.Thunk[db.Window[T]], id func(*T) uuid.UUID) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, th := range thunks {
		w, err := th()
		if err != nil {
			continue
		}
		for i := range w.Rows {
			if k := id(&w.Rows[i]); !seen[k] {
				seen[k] = true
				out = append(out, k)
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
