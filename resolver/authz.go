package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/riverqueue/river/rivertype"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// Authorization lives here and only here. The schema marks every root field
// @public, @authenticated or @hasPermission, and sensitive User fields
// @selfOrPermission; gqlgen runs these functions before the resolver, so a
// resolver never checks who is asking.

var (
	errUnauthenticated = &model.Error{Code: model.CodeUnauthenticated, Message: "log in to do this"}
	errForbidden       = &model.Error{Code: model.CodeForbidden, Message: "you are not allowed to do this"}
)

// Directives returns the implementations of the schema's authorization
// directives.
func Directives() graph.DirectiveRoot {
	return graph.DirectiveRoot{
		Public: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			return next(ctx)
		},
		Authenticated: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			if auth.EffectiveViewer(ctx) == nil {
				return nil, errUnauthenticated
			}
			return next(ctx)
		},
		HasPermission: func(ctx context.Context, _ any, next graphql.Resolver, permission string) (any, error) {
			v := auth.EffectiveViewer(ctx)
			if v == nil {
				return nil, errUnauthenticated
			}
			if !v.Can(permission) {
				return nil, errForbidden
			}
			return next(ctx)
		},
		SelfOrPermission: func(ctx context.Context, obj any, next graphql.Resolver, permission string) (any, error) {
			v := auth.EffectiveViewer(ctx)
			if v == nil {
				return nil, errUnauthenticated
			}
			if u, ok := obj.(*model.User); ok && u.ID == v.UserID || v.Can(permission) {
				return next(ctx)
			}
			return nil, errForbidden
		},
	}
}

// sensitiveMutations guess or spend secrets. Each may run once per request
// document: otherwise aliases (a: login(...) b: login(...) ...) would turn
// one request, one rate-limit hit, into a thousand password guesses.
var sensitiveMutations = map[string]bool{
	"login": true, "register": true, "changePassword": true,
	"requestPasswordReset": true, "resetPassword": true, "verifyEmail": true,
}

// repeatsSensitiveMutation returns the name of a sensitive mutation the
// operation selects more than once (under aliases or not).
func repeatsSensitiveMutation(op *graphql.OperationContext) (string, bool) {
	if op == nil || op.Operation == nil || op.Operation.Operation != ast.Mutation {
		return "", false
	}
	seen := map[string]bool{}
	for _, f := range graphql.CollectFields(op, op.Operation.SelectionSet, []string{"Mutation"}) {
		if sensitiveMutations[f.Name] {
			if seen[f.Name] {
				return f.Name, true
			}
			seen[f.Name] = true
		}
	}
	return "", false
}

// canSeeJob: a job is visible to whoever requested it and to job admins.
func canSeeJob(v *auth.Viewer, row *rivertype.JobRow) bool {
	if v == nil {
		return false
	}
	return v.Can(auth.PermJobsManage) || jobs.MetadataOf(row).RequestedBy == v.UserID
}

// canDownloadExport: an export's file goes to its requester; a user export
// also to job admins; a personal data export to its owner only.
func canDownloadExport(v *auth.Viewer, e *db.Export) bool {
	if v == nil {
		return false
	}
	return e.RequestedBy == v.UserID || e.Kind == db.ExportUsers && v.Can(auth.PermJobsManage)
}
