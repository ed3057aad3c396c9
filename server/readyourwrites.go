package server

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
)

// With read replicas, a client must still read its own writes: a replica
// may be a few milliseconds behind, so a profile saved and then shown could
// come back unsaved. Every mutation runs on the primary and marks its
// client (the user, and the address for anonymous calls such as register
// and login) in shared WriteMarks; that client's reads then stay on the
// primary for the window. Other clients read replicas throughout.

// writerKeys names the client of a request for WriteMarks.
func writerKeys(ctx context.Context) []string {
	keys := make([]string, 0, 2)
	if r := auth.RequestFrom(ctx); r != nil && r.IP != "" {
		keys = append(keys, "a:"+r.IP)
	}
	if v := auth.ViewerFrom(ctx); v != nil {
		keys = append(keys, "u:"+v.UserID.String())
	}
	return keys
}

// readYourWrites sends the reads of a client that wrote recently to the
// primary. It runs after authenticate, which names the client.
func readYourWrites(next http.Handler, marks *cache.WriteMarks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if marks.Marked(ctx, writerKeys(ctx)...) {
			r = r.WithContext(db.OnPrimary(ctx))
		}
		next.ServeHTTP(w, r)
	})
}

// primaryForMutations is the gqlgen extension that runs mutations on the
// primary (they read what they are about to change) and marks their client.
type primaryForMutations struct{ marks *cache.WriteMarks }

func (primaryForMutations) ExtensionName() string                   { return "ReadYourWrites" }
func (primaryForMutations) Validate(graphql.ExecutableSchema) error { return nil }

func (p primaryForMutations) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return next(ctx)
	}
	respond := next(db.OnPrimary(ctx))
	return func(ctx context.Context) *graphql.Response {
		resp := respond(ctx)
		// Marked after the commit and before the client gets its answer, so
		// its next request already finds the mark.
		p.marks.Mark(ctx, writerKeys(ctx)...)
		return resp
	}
}
