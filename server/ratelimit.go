package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/telemetry"
)

// costLimit charges each operation's cost (from its complexity, computed by
// the complexity extension installed before it) to the viewer's budget, or
// the address's when anonymous, before any resolver runs.
type costLimit struct{ l *ratelimit.Limiter }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = costLimit{}

func (costLimit) ExtensionName() string                   { return "CostRateLimit" }
func (costLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (c costLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	// The cached persisted-query path charged this request already and,
	// refused, sent it here for the error.
	st := ratelimit.StateFrom(ctx).Get()
	if st == nil {
		st = charge(ctx, c.l, telemetry.ComplexityOf(oc))
	}
	if st.Limited {
		return limitError("RATE_LIMITED", "this operation costs %d points and %d of %d are left until %s; see rateLimit",
			st.Cost, st.Remaining, st.Limit, st.ResetAt.UTC().Format("15:04:05 MST"))
	}
	return nil
}

// charge takes an operation's cost from its client's budget (the viewer's,
// or the address's when anonymous) and records the state for the headers.
func charge(ctx context.Context, l *ratelimit.Limiter, complexity int) *ratelimit.Status {
	client := "ip:" + auth.RequestFrom(ctx).IP
	if v := auth.ViewerFrom(ctx); v != nil {
		client = "user:" + v.UserID.String()
	}
	st := l.Charge(ctx, client, ratelimit.CostOf(complexity))
	ratelimit.StateFrom(ctx).Set(st)
	return &st
}

// rateLimitHeaders gives every /graphql response its budget in
// X-RateLimit-* headers, and a refused operation the 429 status.
func rateLimitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, state := ratelimit.WithState(r.Context())
		next.ServeHTTP(&budgetWriter{ResponseWriter: w, state: state}, r.WithContext(ctx))
	})
}

type budgetWriter struct {
	http.ResponseWriter
	state   *ratelimit.State
	written bool
}

func (b *budgetWriter) WriteHeader(status int) {
	if !b.written {
		b.written = true
		if st := b.state.Get(); st != nil {
			h := b.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(st.Limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(st.Remaining))
			h.Set("X-RateLimit-Used", strconv.Itoa(st.Limit-st.Remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(st.ResetAt.Unix(), 10))
			if st.Limited {
				h.Set("Retry-After", strconv.Itoa(max(1, int(st.ResetAt.Sub(timeNow()).Seconds()))))
				status = http.StatusTooManyRequests
			}
		}
	}
	b.ResponseWriter.WriteHeader(status)
}

func (b *budgetWriter) Write(p []byte) (int, error) {
	if !b.written {
		b.WriteHeader(http.StatusOK)
	}
	return b.ResponseWriter.Write(p)
}

func (b *budgetWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

var timeNow = time.Now
