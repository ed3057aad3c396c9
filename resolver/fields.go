package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/db"
)

// Projection: a query reads only the columns its selection needs. These maps
// name the column behind each GraphQL field; fields absent from a map (id,
// relations, __typename) need no column of their own.
var (
	userFieldColumns = map[string]db.Columns{
		"email": db.UserEmail, "username": db.UserUsername, "displayName": db.UserDisplayName,
		"status": db.UserStatus, "emailVerified": db.UserEmailVerifiedAt, "emailVerifiedAt": db.UserEmailVerifiedAt,
		"lastLoginAt": db.UserLastLoginAt, "createdAt": db.UserCreatedAt, "updatedAt": db.UserUpdatedAt,
	}
	roleFieldColumns = map[string]db.Columns{
		"name": db.RoleName, "description": db.RoleDescription, "permissions": db.RolePermissions,
		"userCount": db.RoleUserCount, "createdAt": db.RoleCreatedAt, "updatedAt": db.RoleUpdatedAt,
	}
	groupFieldColumns = map[string]db.Columns{
		"name": db.GroupName, "description": db.GroupDescription, "memberCount": db.GroupMemberCount,
		"createdAt": db.GroupCreatedAt, "updatedAt": db.GroupUpdatedAt,
	}
)

// objectType says which object a selection is read as, for fragments on
// interfaces (node(id:) { ... on User { email } }).
type objectType struct {
	name    string
	columns map[string]db.Columns
}

var (
	userType  = objectType{"User", userFieldColumns}
	roleType  = objectType{"Role", roleFieldColumns}
	groupType = objectType{"Group", groupFieldColumns}
)

// columnsAt returns the columns of t needed by the current field's
// selection, found by following each path (e.g. {"edges", "node"} and
// {"nodes"} for a connection; an empty path for the field itself).
func columnsAt(ctx context.Context, t objectType, paths ...[]string) db.Columns {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return db.AllColumns
	}
	return columnsIn(graphql.GetOperationContext(ctx), fc.Field.Selections, t, paths...)
}

func columnsIn(op *graphql.OperationContext, sel ast.SelectionSet, t objectType, paths ...[]string) db.Columns {
	var cols db.Columns
	for _, path := range paths {
		for _, s := range selectionsAt(op, sel, path) {
			for _, f := range graphql.CollectFields(op, s, []string{t.name, "Node"}) {
				cols |= t.columns[f.Name]
			}
		}
	}
	return cols
}

// selectionsAt follows path through sel, returning every selection set found
// at its end (a field may be selected several times under aliases).
func selectionsAt(op *graphql.OperationContext, sel ast.SelectionSet, path []string) []ast.SelectionSet {
	if len(path) == 0 {
		return []ast.SelectionSet{sel}
	}
	var out []ast.SelectionSet
	for _, f := range graphql.CollectFields(op, sel, nil) {
		if f.Name == path[0] {
			out = append(out, selectionsAt(op, f.Selections, path[1:])...)
		}
	}
	return out
}

// connectionPaths are where a connection's nodes are selected.
var connectionPaths = [][]string{{"edges", "node"}, {"nodes"}}
