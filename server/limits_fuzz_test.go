package server

import (
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// The shape checks walk any parsed document without panicking, and the
// depth they report never exceeds the stop they are given.
func FuzzShapeLimits(f *testing.F) {
	for _, q := range []string{
		`{ users(first: 1) { nodes { id } } }`,
		`fragment A on User { id ...A } { users { nodes { ...A } } }`,
		`query Q @a @b { a: x @c { b: y { ... on T { z } } } }`,
		`{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 20_000 {
			return
		}
		doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q}, 5_000)
		if err != nil {
			return
		}
		// Unvalidated documents may hold fragment cycles: the walks must
		// still end.
		resolveSpreads(doc)
		for _, op := range doc.Operations {
			var aliases, directives int
			countShape(op.SelectionSet, &aliases, &directives, map[*ast.FragmentDefinition]bool{})
			if d := depth(op.SelectionSet, 0, 11, nil); d > 11 {
				t.Fatalf("depth %d past its stop", d)
			}
		}
	})
}

// resolveSpreads links fragment spreads to their definitions, as
// validation does.
func resolveSpreads(doc *ast.QueryDocument) {
	var walk func(ast.SelectionSet, int)
	walk = func(set ast.SelectionSet, level int) {
		if level > 50 {
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walk(s.SelectionSet, level+1)
			case *ast.InlineFragment:
				walk(s.SelectionSet, level+1)
			case *ast.FragmentSpread:
				s.Definition = doc.Fragments.ForName(s.Name)
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet, 0)
	}
	for _, fr := range doc.Fragments {
		walk(fr.SelectionSet, 0)
	}
}
