package resolver_test

import (
	"context"
	"slices"
	"testing"

	"github.com/usergraph/usergraph/seed"
)

// Pages skip minting cursors when the selection reads none, and resolvers
// below a list remember what a selection reads for the rest of the
// operation (resolver/fields.go). These tests pin what must not change
// because of either: a cursor asked for in any spelling is there, and two
// selections of one field under different aliases read their own columns.

func TestSelection_CursorsAreMintedWhenAnySpellingSelectsThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := seed.Run(context.Background(), b.db.Pool, seed.Options{Users: 30, Groups: 5}); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Edges    []struct{ Cursor string }
		PageInfo struct{ StartCursor, EndCursor *string }
	}
	var out struct {
		OnlyEnd   page
		Fragment  page
		NoCursors page
		Users     struct {
			Nodes []struct {
				Groups page
			}
		}
	}
	b.mustDo(t, `fragment E on UserGroupConnection { edges { cursor } }
		query {
			onlyEnd: users(first: 3) { pageInfo { endCursor } }
			fragment: users(first: 3) { ... on UserConnection { edges { cursor } } }
			noCursors: users(first: 3) { nodes { id } pageInfo { hasNextPage } }
			users(first: 30) { nodes { groups(first: 2) { ...E pageInfo { startCursor } } } }
		}`, nil, &out)
	if out.OnlyEnd.PageInfo.EndCursor == nil || *out.OnlyEnd.PageInfo.EndCursor == "" {
		t.Fatalf("pageInfo { endCursor } alone: no end cursor: %+v", out.OnlyEnd)
	}
	if len(out.Fragment.Edges) != 3 || slices.Contains(edgeCursors(out.Fragment.Edges), "") {
		t.Fatalf("edges { cursor } inside an inline fragment: %+v, want 3 cursors", out.Fragment.Edges)
	}
	withGroups := 0
	for _, u := range out.Users.Nodes {
		g := u.Groups
		if len(g.Edges) == 0 {
			continue
		}
		withGroups++
		if slices.Contains(edgeCursors(g.Edges), "") || g.PageInfo.StartCursor == nil || *g.PageInfo.StartCursor != g.Edges[0].Cursor {
			t.Fatalf("nested page selecting cursors through a fragment: %+v", g)
		}
	}
	if withGroups == 0 {
		t.Fatal("no seeded user has a group: the nested case was not exercised")
	}

	// The end cursor of a page that selected no edges still pages on.
	var next struct {
		Users struct{ Nodes []struct{ ID string } }
	}
	b.mustDo(t, `query($after: String) { users(first: 3, after: $after) { nodes { id } } }`,
		map[string]any{"after": *out.OnlyEnd.PageInfo.EndCursor}, &next)
	if len(next.Users.Nodes) != 3 {
		t.Fatalf("page after the end cursor: %d users, want 3", len(next.Users.Nodes))
	}
}

func TestSelection_AliasesOfOneFieldReadTheirOwnColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := seed.Run(context.Background(), b.db.Pool, seed.Options{Users: 20, Groups: 5}); err != nil {
		t.Fatal(err)
	}
	type role struct{ Name, Description string }
	var split, joined struct {
		Users struct {
			Nodes []struct {
				A, B, Both []role
			}
		}
	}
	b.mustDo(t, `{ users(first: 20) { nodes { a: roles { name } b: roles { description } } } }`, nil, &split)
	b.mustDo(t, `{ users(first: 20) { nodes { both: roles { name description } } } }`, nil, &joined)
	if len(split.Users.Nodes) != len(joined.Users.Nodes) || len(split.Users.Nodes) == 0 {
		t.Fatalf("%d and %d users", len(split.Users.Nodes), len(joined.Users.Nodes))
	}
	described := 0
	for i, u := range split.Users.Nodes {
		want := joined.Users.Nodes[i].Both
		if len(u.A) != len(want) || len(u.B) != len(want) {
			t.Fatalf("user %d: %d and %d roles under the aliases, want %d", i, len(u.A), len(u.B), len(want))
		}
		for j := range want {
			if u.A[j].Name != want[j].Name || u.B[j].Description != want[j].Description {
				t.Fatalf("user %d role %d: name %q, description %q; want %+v", i, j, u.A[j].Name, u.B[j].Description, want[j])
			}
			if want[j].Description != "" {
				described++
			}
		}
	}
	if described == 0 {
		t.Fatal("no role has a description: the second alias's column was not exercised")
	}
}

func edgeCursors(edges []struct{ Cursor string }) []string {
	out := make([]string, len(edges))
	for i, e := range edges {
		out[i] = e.Cursor
	}
	return out
}
