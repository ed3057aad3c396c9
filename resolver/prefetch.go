package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
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
	if len(ids) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range fieldsAt(ctx, userType, paths) {
		switch f.Name {
		case "roles":
			cols := columnsIn(op, f.Selections, roleType, nil)
			for _, id := range ids {
				l.rolesOfUser.Load(ctx, colKey{ID: id, Cols: cols})
			}
		case "groups":
			args, ok := connectionArgs(op, f)
			if !ok {
				continue
			}
			o := orderArg(op, f)
			cols := columnsIn(op, f.Selections, groupType, connectionPaths...)
			counted := selects(op, f.Selections, "totalCount")
			for _, id := range ids {
				l.groupsOfUser.Load(ctx, pageKey{ID: id, Cols: cols, Args: args, Order: o})
				if counted {
					l.groupCount.Load(ctx, id)
				}
			}
		}
	}
}

// prefetchGroups starts the loads for the relations selected on groups.
func (r *Resolver) prefetchGroups(ctx context.Context, ids []uuid.UUID, paths ...[]string) {
	if len(ids) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range fieldsAt(ctx, groupType, paths) {
		if f.Name != "members" {
			continue
		}
		args, ok := connectionArgs(op, f)
		if !ok {
			continue
		}
		cols := columnsIn(op, f.Selections, userType, connectionPaths...)
		counted := selects(op, f.Selections, "totalCount")
		for _, id := range ids {
			l.membersOf.Load(ctx, pageKey{ID: id, Cols: cols, Args: args})
			if counted {
				l.groupByID.Load(ctx, colKey{ID: id, Cols: db.GroupMemberCount})
			}
		}
	}
}

// prefetchRoles starts the loads for the relations selected on roles.
func (r *Resolver) prefetchRoles(ctx context.Context, ids []uuid.UUID, paths ...[]string) {
	if len(ids) == 0 {
		return
	}
	op, l := graphql.GetOperationContext(ctx), r.loaders(ctx)
	for _, f := range fieldsAt(ctx, roleType, paths) {
		if f.Name != "users" {
			continue
		}
		args, ok := connectionArgs(op, f)
		if !ok {
			continue
		}
		cols := columnsIn(op, f.Selections, userType, connectionPaths...)
		counted := selects(op, f.Selections, "totalCount")
		for _, id := range ids {
			l.holdersOf.Load(ctx, pageKey{ID: id, Cols: cols, Args: args})
			if counted {
				l.roleByID.Load(ctx, colKey{ID: id, Cols: db.RoleUserCount})
			}
		}
	}
}

// fieldsAt collects the fields selected on t at each path below the current
// field.
func fieldsAt(ctx context.Context, t objectType, paths [][]string) []graphql.CollectedField {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return nil
	}
	op := graphql.GetOperationContext(ctx)
	var out []graphql.CollectedField
	for _, path := range paths {
		for _, s := range selectionsAt(op, fc.Field.Selections, path) {
			out = append(out, graphql.CollectFields(op, s, []string{t.name, "Node"})...)
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
