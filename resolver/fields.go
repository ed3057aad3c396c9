package resolver

import (
	"context"
	"sync"

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

// selectionPath says where the current field selects its objects.
type selectionPath int

const (
	// onField: the field returns the objects (user(id:), roles).
	onField selectionPath = iota
	// onNodes: the field returns a connection; its objects are selected at
	// edges.node and nodes.
	onNodes
)

// pathsOf lists the paths of at below the current field.
var pathsOf = [...][][]string{
	onField: {nil},
	onNodes: {{"edges", "node"}, {"nodes"}},
}

// nodeSelection is what a field selects on the objects it returns: the
// fields collected on the object type, and the columns they read. For a
// connection (onNodes) it also says whether any cursor is selected.
type nodeSelection struct {
	fields  []graphql.CollectedField
	cols    db.Columns
	cursors bool
}

// columnsAt returns the columns of t the current field's selection reads at.
func columnsAt(ctx context.Context, t objectType, at selectionPath) db.Columns {
	return selectedOn(ctx, t, at).cols
}

// selectedOn returns what the current field selects on t at. A field below
// a list resolves once per parent (the groups of each of 50 users) with the
// same selection, and collecting fields costs more than the rest of such a
// resolver: the answer is kept for the rest of the operation, keyed by the
// selection set's identity as gqlgen's own CollectFields cache is.
func selectedOn(ctx context.Context, t objectType, at selectionPath) *nodeSelection {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return &nodeSelection{cols: db.AllColumns, cursors: true}
	}
	sel := fc.Field.Selections
	key := selectionKey{n: len(sel), object: t.name, at: at}
	if len(sel) > 0 {
		key.first = &sel[0]
	}
	memo := selectionsFrom(ctx)
	if s, ok := memo.get(key); ok {
		return s
	}
	op := graphql.GetOperationContext(ctx)
	s := &nodeSelection{fields: objectFields(op, selectionsIn(op, sel, pathsOf[at]), t)}
	for _, f := range s.fields {
		s.cols |= t.columns[f.Name]
	}
	s.cursors = at == onNodes && selectsCursor(op, sel)
	memo.put(key, s)
	return s
}

// selectsCursor reports whether a connection's selection reads a cursor:
// an edge's, or the page info's start or end cursor. Fields are collected
// without a type condition, so fragments count too.
func selectsCursor(op *graphql.OperationContext, sel ast.SelectionSet) bool {
	for _, f := range graphql.CollectFields(op, sel, nil) {
		switch f.Name {
		case "edges":
			if selects(op, f.Selections, "cursor") {
				return true
			}
		case "pageInfo":
			if selects(op, f.Selections, "startCursor") || selects(op, f.Selections, "endCursor") {
				return true
			}
		}
	}
	return false
}

// columnsIn returns the columns of t that sel reads at the given paths.
func columnsIn(op *graphql.OperationContext, sel ast.SelectionSet, t objectType, at selectionPath) db.Columns {
	var cols db.Columns
	for _, f := range objectFields(op, selectionsIn(op, sel, pathsOf[at]), t) {
		cols |= t.columns[f.Name]
	}
	return cols
}

// selectionsIn returns the selection sets found at each path in sel.
func selectionsIn(op *graphql.OperationContext, sel ast.SelectionSet, paths [][]string) []ast.SelectionSet {
	var out []ast.SelectionSet
	for _, path := range paths {
		out = append(out, selectionsAt(op, sel, path)...)
	}
	return out
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

// selectionKey identifies a selection set within one operation: its first
// element and length (the same key gqlgen's CollectFields cache uses), read
// as object for the objects at a path.
type selectionKey struct {
	first  *ast.Selection
	n      int
	object string
	at     selectionPath
}

// selections memoizes selectedOn for one operation. The operation's
// variables (which @include and @skip may read) are fixed, so an answer
// never goes stale.
type selections struct {
	mu sync.Mutex
	m  map[selectionKey]*nodeSelection
}

func (s *selections) get(k selectionKey) (*nodeSelection, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

func (s *selections) put(k selectionKey, v *nodeSelection) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[selectionKey]*nodeSelection)
	}
	s.m[k] = v
}

// selectionsFrom returns the operation's memo; nil (no memo) without
// OperationMiddleware.
func selectionsFrom(ctx context.Context) *selections {
	if l := loadersFrom(ctx); l != nil {
		return &l.selections
	}
	return nil
}
