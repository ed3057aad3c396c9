package server

import (
	"context"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits bound what one request may ask for. Zero fields take the
// defaults (WithDefaults).
type Limits struct {
	// MaxBody is the largest request body in bytes, checked before it is
	// decoded. Default 64 KiB.
	MaxBody int64
	// MaxDocument is the longest query document in characters. Default
	// 15,000.
	MaxDocument int
	// MaxTokens bounds the parser's work. Default 5,000.
	MaxTokens int
	// MaxDepth is the deepest field nesting (Relay edges and node
	// included). Default 10.
	MaxDepth int
	// MaxAliases is how many aliased fields a document may have. Default 15.
	MaxAliases int
	// MaxDirectives is how many directives a document may use. Default 20.
	MaxDirectives int
	// MaxComplexity is the most an operation may cost (see
	// resolver.Complexity). Default 2,500.
	MaxComplexity int
}

// WithDefaults fills in the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxBody <= 0 {
		l.MaxBody = 64 << 10
	}
	def(&l.MaxDocument, 15_000)
	def(&l.MaxTokens, 5_000)
	def(&l.MaxDepth, 10)
	def(&l.MaxAliases, 15)
	def(&l.MaxDirectives, 20)
	def(&l.MaxComplexity, 2_500)
	return l
}

// shapeLimits is the gqlgen extension that refuses oversized documents
// before they are parsed, and too deep, too aliased or too directive-laden
// operations after validation, before any resolver runs.
type shapeLimits struct{ l Limits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = shapeLimits{}

func (shapeLimits) ExtensionName() string                   { return "ShapeLimits" }
func (shapeLimits) Validate(graphql.ExecutableSchema) error { return nil }

func limitError(code, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	errcode.Set(err, code)
	return err
}

// MutateOperationParameters checks the document's size before parsing.
func (s shapeLimits) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if n := len(raw.Query); n > s.l.MaxDocument {
		return limitError("DOCUMENT_TOO_LARGE", "the document has %d characters; the limit is %d", n, s.l.MaxDocument)
	}
	return nil
}

// MutateOperationContext checks the parsed operation's shape.
func (s shapeLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	var aliases, directives int
	for _, op := range oc.Doc.Operations {
		directives += len(op.Directives)
		countShape(op.SelectionSet, &aliases, &directives, map[*ast.FragmentDefinition]bool{})
	}
	switch {
	case aliases > s.l.MaxAliases:
		return limitError("TOO_MANY_ALIASES", "the document has %d aliases; the limit is %d", aliases, s.l.MaxAliases)
	case directives > s.l.MaxDirectives:
		return limitError("TOO_MANY_DIRECTIVES", "the document uses %d directives; the limit is %d", directives, s.l.MaxDirectives)
	}
	if oc.Operation != nil {
		if d := depth(oc.Operation.SelectionSet, 0, s.l.MaxDepth+1, nil); d > s.l.MaxDepth {
			return limitError("DEPTH_LIMIT_EXCEEDED", "the operation nests fields %d deep; the limit is %d", d, s.l.MaxDepth)
		}
	}
	return nil
}

// countShape counts aliases and directives, each fragment once.
func countShape(set ast.SelectionSet, aliases, directives *int, seen map[*ast.FragmentDefinition]bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				*aliases++
			}
			*directives += len(s.Directives)
			countShape(s.SelectionSet, aliases, directives, seen)
		case *ast.InlineFragment:
			*directives += len(s.Directives)
			countShape(s.SelectionSet, aliases, directives, seen)
		case *ast.FragmentSpread:
			*directives += len(s.Directives)
			if s.Definition != nil && !seen[s.Definition] {
				seen[s.Definition] = true
				*directives += len(s.Definition.Directives)
				countShape(s.Definition.SelectionSet, aliases, directives, seen)
			}
		}
	}
}

// depth is the deepest field nesting under set; counting stops at stop.
// Validation has rejected fragment cycles, but the walk does not rely on
// it: a fragment already on the current path is not entered again.
func depth(set ast.SelectionSet, level, stop int, path []*ast.FragmentDefinition) int {
	deepest := level
	if level >= stop {
		return level
	}
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				// Introspection (GraphiQL's query nests ofType a dozen
				// deep) is off in production and cheap when on.
				continue
			}
			d = depth(s.SelectionSet, level+1, stop, path)
		case *ast.InlineFragment:
			d = depth(s.SelectionSet, level, stop, path)
		case *ast.FragmentSpread:
			if s.Definition != nil && !slices.Contains(path, s.Definition) {
				d = depth(s.Definition.SelectionSet, level, stop, append(path, s.Definition))
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}
