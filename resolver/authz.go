package resolver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/graph"
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
