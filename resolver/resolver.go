// Package resolver implements the GraphQL schema: short resolver bodies in
// the *.resolvers.go files gqlgen maintains, and beside them the
// request-scoped dataloaders, the projection of selections onto columns and
// the error presenter.
package resolver

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	db         *db.DB
	sessions   *auth.Sessions
	hasher     *auth.Hasher
	throttle   *auth.Throttle
	jobs       Jobs
	cache      cache.Store
	now        func() time.Time
	loaderWait time.Duration
	log        *slog.Logger
	cfg        Config
}

// Services are the collaborators of the resolvers beyond the database.
type Services struct {
	Sessions *auth.Sessions
	Hasher   *auth.Hasher
	Throttle *auth.Throttle
	// Jobs enqueues background work inside the change's transaction; nil
	// enqueues nothing.
	Jobs Jobs
	// Cache is where counts are reused and what every change invalidates
	// (responses, entities); nil caches nothing.
	Cache cache.Store
}

// Jobs enqueues background work. Each method joins tx, so a job exists if
// and only if the change that causes it commits.
type Jobs interface {
	WelcomeTx(ctx context.Context, tx *db.Tx, userID uuid.UUID) error
	// AccountEmailTx sends a verification or reset link (purpose is
	// db.PurposeVerifyEmail or db.PurposeResetPassword).
	AccountEmailTx(ctx context.Context, tx *db.Tx, userID uuid.UUID, purpose string) error
	// NoticeTx sends a security notice (jobs.NoticePasswordChanged, or
	// jobs.NoticeNewSignIn naming the new session).
	NoticeTx(ctx context.Context, tx *db.Tx, userID uuid.UUID, notice string, sessionID uuid.UUID, at time.Time) error
	ExportTx(ctx context.Context, tx *db.Tx, requestedBy uuid.UUID, kind, format string, filter model.UserFilter, now time.Time) (*rivertype.JobRow, *db.Export, error)
	ImportTx(ctx context.Context, tx *db.Tx, requestedBy uuid.UUID, key, csv, sourceURL string, sendWelcome bool, now time.Time) (*rivertype.JobRow, bool, error)
	ExportPath(e *db.Export) (path, name string)
	Job(ctx context.Context, id int64) (*rivertype.JobRow, error)
	List(ctx context.Context, f jobs.JobFilter, first int, after string) ([]*rivertype.JobRow, bool, error)
	Retry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	Cancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

// Config configures the resolvers.
type Config struct {
	// LoaderWait is how long a dataloader collects keys before it sends its
	// batch. Defaults to 1ms.
	LoaderWait time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log receives what a request cannot report to its client. Defaults to
	// discarding it.
	Log *slog.Logger
	// SignInNotices emails a user when their account is signed in to from
	// a device (user agent) it has not seen before.
	SignInNotices bool
	// DeletionGrace is how long a self-deleted account can still be
	// recovered by logging in. Defaults to 30 days.
	DeletionGrace time.Duration
	// ImportURLHosts are the hosts importUsers may download from.
	ImportURLHosts []string
	// ObserveBatch, when set, is told each dataloader batch's size
	// (metrics).
	ObserveBatch func(loader string, keys int)
}

// New returns the root resolver.
func New(d *db.DB, a Services, cfg Config) *Resolver {
	if cfg.LoaderWait <= 0 {
		cfg.LoaderWait = time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DeletionGrace <= 0 {
		cfg.DeletionGrace = 30 * 24 * time.Hour
	}
	return &Resolver{db: d, sessions: a.Sessions, hasher: a.Hasher, throttle: a.Throttle, jobs: a.Jobs, cache: a.Cache, now: cfg.Now,
		loaderWait: cfg.LoaderWait, log: cfg.Log, cfg: cfg}
}

// OperationMiddleware gives each GraphQL operation its own dataloaders, and
// refuses documents that repeat a sensitive mutation (see
// repeatsSensitiveMutation). Install it with handler.Server.AroundOperations.
func (r *Resolver) OperationMiddleware(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if name, ok := repeatsSensitiveMutation(graphql.GetOperationContext(ctx)); ok {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    name + " may appear only once per request",
			Extensions: map[string]any{"code": string(model.CodeInvalid)},
		}}})
	}
	return next(WithLoaders(ctx, NewLoaders(r.db, r.loaderWait, r.cache, r.cfg.ObserveBatch)))
}

// loaders returns the operation's loaders. Without OperationMiddleware (a
// wiring mistake) each call gets fresh loaders: correct, only unbatched.
func (r *Resolver) loaders(ctx context.Context) *loaderSet {
	if l := loadersFrom(ctx); l != nil {
		return l.get()
	}
	return newLoaderSet(r.db, r.loaderWait, r.cache, r.cfg.ObserveBatch)
}

// changed is called by every mutation after it writes, so fields resolved
// later in the same operation read fresh data.
func (r *Resolver) changed(ctx context.Context) {
	if l := loadersFrom(ctx); l != nil {
		l.Reset()
	}
}
