package db

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// StatementCounter counts the SQL statements sent on behalf of one request.
// It is how tests prove that a nested query costs one statement per level,
// and how the debug extension reports it.
type StatementCounter struct{ n atomic.Int64 }

// Count returns the number of statements counted so far.
func (c *StatementCounter) Count() int64 { return c.n.Load() }

type counterKey struct{}

// WithStatementCounter returns a context whose statements are counted.
func WithStatementCounter(ctx context.Context) (context.Context, *StatementCounter) {
	c := &StatementCounter{}
	return context.WithValue(ctx, counterKey{}, c), c
}

// StatementCounterFrom returns the context's counter, or nil.
func StatementCounterFrom(ctx context.Context) *StatementCounter {
	c, _ := ctx.Value(counterKey{}).(*StatementCounter)
	return c
}

// statementTracer is pgx's hook into every statement. It sees the context
// gorm passes down, so it can attribute the statement to its request.
// It also times each statement for ObserveQuery.
type statementTracer struct {
	observe func(time.Duration, error)
}

type startKey struct{}

func (t statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if c := StatementCounterFrom(ctx); c != nil {
		c.n.Add(1)
	}
	if t.observe != nil {
		ctx = context.WithValue(ctx, startKey{}, time.Now())
	}
	return ctx
}

func (t statementTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if start, ok := ctx.Value(startKey{}).(time.Time); ok && t.observe != nil {
		t.observe(time.Since(start), data.Err)
	}
}

func (statementTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	if c := StatementCounterFrom(ctx); c != nil {
		c.n.Add(1)
	}
	return ctx
}

func (statementTracer) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
