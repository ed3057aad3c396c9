package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/plugin/dbresolver"
)

type primaryKey struct{}

// OnPrimary returns a context whose statements all run on the primary, even
// reads that would otherwise go to a replica. Writes, and everything inside
// a transaction, go to the primary anyway; this is for reads that must see
// the latest commit: a viewer's reads just after their own write, mutations
// (which read before they write), authentication and background jobs.
// Without replicas it changes nothing.
func OnPrimary(ctx context.Context) context.Context {
	if PinnedToPrimary(ctx) {
		return ctx
	}
	return context.WithValue(ctx, primaryKey{}, true)
}

// PinnedToPrimary reports whether ctx came from OnPrimary. Caches use it:
// a pinned request must not be answered from an entry that a lagging
// replica's read may have filled.
func PinnedToPrimary(ctx context.Context) bool {
	v, _ := ctx.Value(primaryKey{}).(bool)
	return v
}

// replicas routes gorm's reads to healthy streaming replicas through gorm's
// dbresolver plugin, and to the primary when none is healthy. It is the
// plugin's Policy: dbresolver hands it the replica pools, and the primary's
// pool is registered as the last "replica" so that falling back needs no
// special path (and so that dbresolver, which skips the policy for a single
// replica, always asks).
type replicas struct {
	pools   []*pgxpool.Pool
	sqlDBs  []*sql.DB
	healthy []atomic.Bool
	index   map[gorm.ConnPool]int // replica pool -> position; the primary is absent
	log     *slog.Logger

	stop chan struct{}
	done sync.WaitGroup
}

// Resolve picks a random healthy replica, or the primary (last in pools).
func (r *replicas) Resolve(pools []gorm.ConnPool) gorm.ConnPool {
	n := len(pools) - 1
	if n <= 0 {
		return pools[len(pools)-1]
	}
	start := rand.IntN(n)
	for i := range n {
		p := pools[(start+i)%n]
		if j, ok := r.index[p]; ok && r.healthy[j].Load() {
			return p
		}
	}
	return pools[n]
}

// setHealth records a replica's state, logging changes once.
func (r *replicas) setHealth(i int, ok bool, err error) {
	if r.healthy[i].Swap(ok) == ok {
		return
	}
	if ok {
		r.log.Info("read replica is back: reads return to it", "replica", i)
	} else {
		r.log.Warn("read replica is unreachable: its reads go to the primary", "replica", i, "err", err)
	}
}

// lagQuery is how far a standby's replay is behind: zero when it has
// replayed all it received, else the age of the last transaction it
// replayed. (A primary, say a promoted replica, has no lag.)
const lagQuery = `SELECT CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
	ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8`

// check asks every replica for its lag once. A replica that does not
// answer, or lags more than maxLag, gets no reads until it is back.
func (r *replicas) check(ctx context.Context, timeout, maxLag time.Duration) {
	for i, p := range r.pools {
		checkCtx, cancel := context.WithTimeout(ctx, timeout)
		var lag float64
		err := p.QueryRow(checkCtx, lagQuery).Scan(&lag)
		cancel()
		if err == nil && lag > maxLag.Seconds() {
			err = fmt.Errorf("replay lags %.1fs behind the primary (DATABASE_REPLICA_MAX_LAG is %s)", lag, maxLag)
		}
		r.setHealth(i, err == nil, err)
	}
}

func (r *replicas) watch(interval, maxLag time.Duration) {
	defer r.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.check(context.Background(), interval, maxLag)
		}
	}
}

func (r *replicas) close() {
	close(r.stop)
	r.done.Wait()
	r.closePools()
}

// replicaTracer marks a replica down the moment a statement on it fails for
// a reason other than the statement itself (the connection broke, the
// server is gone), so that only the requests in flight at that moment see
// the error; the health check brings it back.
type replicaTracer struct {
	statementTracer
	down func(error)
}

func (t replicaTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	t.statementTracer.TraceQueryEnd(ctx, conn, data)
	if data.Err != nil && unreachable(ctx, data.Err) {
		t.down(data.Err)
	}
}

// replicaConn is a replica's connection pool as gorm sees it. A read that
// cannot reach the replica at all (its server went away between two health
// checks) marks it down and runs on the primary instead, so that losing a
// replica fails no request. Errors from the statement itself are returned
// as they are.
type replicaConn struct {
	*sql.DB
	primary *sql.DB
	down    func(error)
}

func (c *replicaConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := c.DB.QueryContext(ctx, query, args...)
	if err != nil && unreachable(ctx, err) {
		c.down(err)
		return c.primary.QueryContext(ctx, query, args...)
	}
	return rows, err
}

// unreachable tells a server or connection failure from a statement's own
// error (a *pgconn.PgError) and from the caller giving up.
func unreachable(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr) && ctx.Err() == nil
}

// openReplicas opens one pool per replica URL with the primary's settings
// and registers the routing on gdb. A replica that is down at start is not
// an error: its reads go to the primary until the health check sees it up.
func openReplicas(ctx context.Context, cfg Config, gdb *gorm.DB, primary *sql.DB) (*replicas, error) {
	r := &replicas{
		healthy: make([]atomic.Bool, len(cfg.ReplicaURLs)),
		index:   map[gorm.ConnPool]int{},
		log:     cfg.Log,
		stop:    make(chan struct{}),
	}
	dialectors := make([]gorm.Dialector, 0, len(cfg.ReplicaURLs)+1)
	for i, u := range cfg.ReplicaURLs {
		pcfg, err := poolConfig(u, cfg)
		if err != nil {
			r.closePools()
			return nil, errors.New("DATABASE_REPLICA_URLS: not a valid PostgreSQL URL")
		}
		var tracer pgx.QueryTracer = replicaTracer{statementTracer: statementTracer{observe: cfg.ObserveQuery},
			down: func(err error) { r.setHealth(i, false, err) }}
		if cfg.Tracer != nil {
			tracer = multiTracer(tracer, cfg.Tracer)
		}
		pcfg.ConnConfig.Tracer = tracer
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			r.closePools()
			return nil, err
		}
		sqlDB := stdlib.OpenDBFromPool(pool)
		r.pools = append(r.pools, pool)
		r.sqlDBs = append(r.sqlDBs, sqlDB)
		conn := &replicaConn{DB: sqlDB, primary: primary, down: func(err error) { r.setHealth(i, false, err) }}
		r.index[conn] = i
		dialectors = append(dialectors, postgres.New(postgres.Config{Conn: conn}))
	}
	dialectors = append(dialectors, postgres.New(postgres.Config{Conn: primary}))
	r.check(ctx, cfg.ReplicaCheckInterval, cfg.ReplicaMaxLag)
	if err := gdb.Use(dbresolver.Register(dbresolver.Config{Replicas: dialectors, Policy: r})); err != nil {
		r.closePools()
		return nil, err
	}
	// Reads whose context asks for the primary are marked as writes before
	// dbresolver routes them. gorm puts the last callback registered
	// Before("*") first, so this one runs ahead of dbresolver's.
	stick := func(g *gorm.DB) {
		if g.Statement.Context != nil && PinnedToPrimary(g.Statement.Context) {
			dbresolver.Write.ModifyStatement(g.Statement)
		}
	}
	for _, err := range []error{
		gdb.Callback().Query().Before("*").Register("usergraph:on_primary", stick),
		gdb.Callback().Row().Before("*").Register("usergraph:on_primary", stick),
		gdb.Callback().Raw().Before("*").Register("usergraph:on_primary", stick),
	} {
		if err != nil {
			r.closePools()
			return nil, err
		}
	}
	r.done.Add(1)
	go r.watch(cfg.ReplicaCheckInterval, cfg.ReplicaMaxLag)
	return r, nil
}

func (r *replicas) closePools() {
	for i := range r.pools {
		_ = r.sqlDBs[i].Close()
		r.pools[i].Close()
	}
}

// ReplicaHealth reports, per configured replica, whether reads go to it.
func (d *DB) ReplicaHealth() []bool {
	if d.replicas == nil {
		return nil
	}
	out := make([]bool, len(d.replicas.healthy))
	for i := range out {
		out[i] = d.replicas.healthy[i].Load()
	}
	return out
}
