package resolver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/usergraph/usergraph/seed"
)

// The whole point of the dataloaders: a nested query costs one SQL statement
// per level, whatever the page size. Counted by the pgx tracer and reported
// in the debug extension.
//
// The loaders run with the production batch window (1ms): the count must not
// depend on scheduling, because list resolvers prefetch each level's
// complete key set (see resolver/prefetch.go).
func TestStatements_NestedQueryCostsOneStatementPerLevel(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{loaderWait: time.Millisecond})
	if _, err := seed.Run(context.Background(), b.db.Pool, seed.Options{Users: 150, Groups: 20}); err != nil {
		t.Fatal(err)
	}
	// Page sizes 10 and 100, or 10 and the largest the complexity limit
	// lets a three-level query have.
	queries := []struct {
		name  string
		query string
		want  int
		big   int
	}{
		{"users", `query($n: Int!) { users(first: $n) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`, 1, 0},
		{"users+totalCount", `query($n: Int!) { users(first: $n) { totalCount nodes { id } } }`, 2, 0},
		{"users+roles+groups", `query($n: Int!) { users(first: $n) { nodes { id roles { name } groups(first: 5) { nodes { name } } } } }`, 3, 0},
		{"users+roles+groups+memberCount", `query($n: Int!) { users(first: $n) { nodes { id roles { name } groups(first: 5) { nodes { name memberCount } } } } }`, 3, 0},
		{"users+groups+members", `query($n: Int!) { users(first: $n) { nodes { id groups(first: 5) { totalCount edges { role node { name members(first: 3) { nodes { username roles { name } } } } } } } } }`, 5, 20},
		{"groups+members+roles", `query($n: Int!) { groups(first: $n) { nodes { name members(first: 5) { totalCount nodes { email roles { permissions } } } } } }`, 4, 50},
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			counts := map[int]int{}
			big := q.big
			if big == 0 {
				big = 100
			}
			for _, n := range []int{10, big} {
				r := b.mustDo(t, q.query, map[string]any{"n": n}, nil)
				counts[n] = r.statements(t)
			}
			if counts[10] != counts[big] {
				t.Fatalf("statements depend on page size: %d for 10, %d for %d", counts[10], counts[big], big)
			}
			if counts[10] != q.want {
				t.Fatalf("got %d statements, want %d", counts[10], q.want)
			}
		})
	}
}

// node(id:) and nodes(ids:) go through the same loaders: one statement per
// kind of node, however many IDs.
func TestStatements_NodesBatchByKind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []any
	for i := range 30 {
		ids = append(ids, b.createUser(t, fmt.Sprintf("n%d@example.com", i), fmt.Sprintf("node%d", i)))
	}
	r := b.mustDo(t, `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { email } } }`, map[string]any{"ids": ids}, nil)
	if got := r.statements(t); got != 1 {
		t.Fatalf("nodes(30 user ids) sent %d statements, want 1", got)
	}
	r = b.mustDo(t, `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { email roles { name } groups(first: 2) { nodes { name } } } } }`,
		map[string]any{"ids": ids}, nil)
	if got := r.statements(t); got != 3 {
		t.Fatalf("nodes(30 user ids) with roles and groups sent %d statements, want 3", got)
	}
}
