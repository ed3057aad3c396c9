package cache

import (
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// Scope says who may share a cached response.
type Scope int

// Scopes, from widest to narrowest.
const (
	// Public responses are shared by everyone with the same permissions.
	Public Scope = iota
	// Private responses belong to the user who asked.
	Private
)

// Policy is how long an operation's response may be cached and by whom.
// A zero MaxAge means it must not be cached.
type Policy struct {
	MaxAge time.Duration
	Scope  Scope
}

// PolicyOf reads the @cacheControl directives an operation touches: the
// response may be cached only when every selected field allows it, for the
// smallest maxAge among them, and privately when any field is private. A
// field without a directive takes its return type's, else its parent's;
// a root field without one makes the operation uncacheable. Mutations and
// subscriptions never are cacheable, nor is introspection.
func PolicyOf(schema *ast.Schema, op *ast.OperationDefinition) Policy {
	if op == nil || op.Operation != ast.Query {
		return Policy{}
	}
	w := walker{schema: schema, maxAge: -1}
	w.selections(op.SelectionSet, hint{}, true)
	if w.uncacheable || w.maxAge <= 0 {
		return Policy{}
	}
	return Policy{MaxAge: time.Duration(w.maxAge) * time.Second, Scope: w.scope}
}

// hint is a policy in progress: maxAge < 0 means "not set".
type hint struct {
	maxAge int
	set    bool
	scope  Scope
}

type walker struct {
	schema      *ast.Schema
	maxAge      int // smallest seen; -1 before any
	scope       Scope
	uncacheable bool
	depth       int
}

func (w *walker) selections(set ast.SelectionSet, parent hint, root bool) {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > 64 || w.uncacheable {
		w.uncacheable = w.depth > 64 || w.uncacheable
		return
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			w.field(s, parent, root)
		case *ast.InlineFragment:
			w.selections(s.SelectionSet, parent, root)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				w.selections(s.Definition.SelectionSet, parent, root)
			}
		}
	}
}

func (w *walker) field(f *ast.Field, parent hint, root bool) {
	if f.Name == "__typename" {
		return
	}
	if f.Definition == nil || f.Name == "__schema" || f.Name == "__type" {
		w.uncacheable = true
		return
	}
	h := parent
	h.set = parent.set
	if t := w.schema.Types[f.Definition.Type.Name()]; t != nil {
		h = apply(h, t.Directives)
	}
	h = apply(h, f.Definition.Directives)
	if root && !h.set {
		w.uncacheable = true
		return
	}
	if h.set {
		if h.maxAge == 0 {
			w.uncacheable = true
			return
		}
		if w.maxAge < 0 || h.maxAge < w.maxAge {
			w.maxAge = h.maxAge
		}
	}
	if h.scope == Private {
		w.scope = Private
	}
	if len(f.SelectionSet) > 0 {
		w.selections(f.SelectionSet, h, false)
	}
}

// apply overlays the @cacheControl of directives on h: a given maxAge
// replaces the inherited one, a given scope narrows it.
func apply(h hint, directives ast.DirectiveList) hint {
	d := directives.ForName("cacheControl")
	if d == nil {
		return h
	}
	if a := d.Arguments.ForName("maxAge"); a != nil && a.Value != nil {
		if n, err := strconv.Atoi(a.Value.Raw); err == nil {
			h.maxAge, h.set = n, true
		}
	}
	if a := d.Arguments.ForName("scope"); a != nil && a.Value != nil && a.Value.Raw == "PRIVATE" {
		h.scope = Private
	}
	return h
}
