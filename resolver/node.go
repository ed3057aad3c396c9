package resolver

import (
	"context"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
)

// maxNodes bounds nodes(ids:) like a page.
const maxNodes = 100

// loadNode fetches any Node by kind; a nil interface (not a typed nil) when
// it does not exist, so the field is null.
func (r *Resolver) loadNode(ctx context.Context, kind model.Kind, id uuid.UUID) (graph.Node, error) {
	switch kind {
	case model.KindUser:
		if u, err := r.loadUser(ctx, id); u != nil || err != nil {
			return u, err
		}
	case model.KindRole:
		if ro, err := r.loadRole(ctx, id); ro != nil || err != nil {
			return ro, err
		}
	case model.KindGroup:
		if g, err := r.loadGroup(ctx, id); g != nil || err != nil {
			return g, err
		}
	}
	return nil, nil
}

// fetchNodes runs one batch per kind for the ids of nodes(ids:) and primes
// the loaders with the rows found, which loadNode then reads; an id not
// found is looked up again there, and answers null.
func (r *Resolver) fetchNodes(ctx context.Context, ids map[model.Kind][]uuid.UUID) {
	l := r.loaders(ctx)
	if users := ids[model.KindUser]; len(users) > 0 {
		l.userByID.fetch(ctx, colKeys(users, columnsAt(ctx, userType, onField)))
	}
	if roles := ids[model.KindRole]; len(roles) > 0 {
		l.roleByID.fetch(ctx, colKeys(roles, columnsAt(ctx, roleType, onField)))
	}
	if groups := ids[model.KindGroup]; len(groups) > 0 {
		l.groupByID.fetch(ctx, colKeys(groups, columnsAt(ctx, groupType, onField)))
	}
}

type bulkLookupKey struct{}

// inBulkLookup reports whether the lookup is one of many (nodes(ids:)),
// whose caller prefetches relations for all of them at once instead of one
// statement per node.
func inBulkLookup(ctx context.Context) bool { return ctx.Value(bulkLookupKey{}) != nil }

// prefetchNodes prefetches the relations selected on the nodes found, one
// batch per kind.
func (r *Resolver) prefetchNodes(ctx context.Context, nodes []graph.Node) {
	var users, roles, groups []uuid.UUID
	for _, n := range nodes {
		switch n := n.(type) {
		case *model.User:
			users = append(users, n.ID)
		case *model.Role:
			roles = append(roles, n.ID)
		case *model.Group:
			groups = append(groups, n.ID)
		}
	}
	r.prefetchUsers(ctx, users, onField)
	r.prefetchRoles(ctx, roles, onField)
	r.prefetchGroups(ctx, groups, onField)
}
