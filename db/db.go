// Package db owns Usergraph's PostgreSQL access: the connection pool, the
// versioned migrations, one store per aggregate, keyset pagination and the
// translation of database errors into model errors.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Config configures the connection pool.
type Config struct {
	// URL is a PostgreSQL connection URL or DSN.
	URL string
	// MaxConns bounds the pool. Defaults to 4 × the number of CPUs, at least 8.
	MaxConns int32
	// MinConns is kept open even when idle. Defaults to 2.
	MinConns int32
	// MaxConnLifetime recycles connections so that a failover or a PgBouncer
	// restart is picked up. Defaults to 30 minutes.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes idle connections above MinConns. Defaults to 5 minutes.
	MaxConnIdleTime time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for every session, so
	// a runaway query cannot hold a connection forever. Defaults to 10 seconds;
	// 0 after WithDefaults means "use the default", a negative value disables it.
	StatementTimeout time.Duration
	// ApplicationName shows up in pg_stat_activity. Defaults to "usergraph".
	ApplicationName string
	// ObserveQuery, when set, is told each statement's duration and error
	// (metrics).
	ObserveQuery func(time.Duration, error)
	// Tracer, when set, also traces every statement (OpenTelemetry).
	Tracer pgx.QueryTracer
	// ReplicaURLs are streaming replicas of URL. When set, reads outside a
	// transaction go to a healthy replica (see OnPrimary for the reads that
	// must not); writes and transactions stay on the primary. Each replica
	// gets a pool of MaxConns.
	ReplicaURLs []string
	// ReplicaCheckInterval is how often each replica is pinged; an
	// unreachable one gets no reads until it answers again. Defaults to 1s.
	ReplicaCheckInterval time.Duration
	// ReplicaMaxLag takes a replica out of reads while its replay is further
	// behind than this. Defaults to 5s.
	ReplicaMaxLag time.Duration
	// Log receives replica state changes. Defaults to discarding them.
	Log *slog.Logger
}

// WithDefaults returns a copy of c with unset fields filled in.
func (c Config) WithDefaults() Config {
	if c.MaxConns == 0 {
		c.MaxConns = int32(max(4*runtime.NumCPU(), 8))
	}
	if c.MinConns == 0 {
		c.MinConns = 2
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = 30 * time.Minute
	}
	if c.MaxConnIdleTime == 0 {
		c.MaxConnIdleTime = 5 * time.Minute
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = 10 * time.Second
	}
	if c.ApplicationName == "" {
		c.ApplicationName = "usergraph"
	}
	if c.ReplicaCheckInterval == 0 {
		c.ReplicaCheckInterval = time.Second
	}
	if c.ReplicaMaxLag == 0 {
		c.ReplicaMaxLag = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid setting, naming it.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("DATABASE_URL: must be set")
	case c.MaxConns < 1:
		return fmt.Errorf("DB_MAX_CONNS: must be at least 1, got %d", c.MaxConns)
	case c.MinConns < 0 || c.MinConns > c.MaxConns:
		return fmt.Errorf("DB_MIN_CONNS: must be between 0 and DB_MAX_CONNS (%d), got %d", c.MaxConns, c.MinConns)
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return fmt.Errorf("DATABASE_URL: not a valid PostgreSQL URL")
	}
	for _, u := range c.ReplicaURLs {
		if _, err := pgxpool.ParseConfig(u); err != nil {
			return fmt.Errorf("DATABASE_REPLICA_URLS: not a valid PostgreSQL URL")
		}
	}
	if c.ReplicaCheckInterval < 0 {
		return fmt.Errorf("DATABASE_REPLICA_CHECK_INTERVAL: must be positive, got %s", c.ReplicaCheckInterval)
	}
	if c.ReplicaMaxLag < 0 {
		return fmt.Errorf("DATABASE_REPLICA_MAX_LAG: must be positive, got %s", c.ReplicaMaxLag)
	}
	return nil
}

// DB is the application's handle on PostgreSQL: one pgx pool shared by gorm
// (through database/sql) and by code that needs pgx itself (COPY, River).
type DB struct {
	Pool *pgxpool.Pool
	SQL  *sql.DB
	Gorm *gorm.DB

	replicas *replicas // nil without DATABASE_REPLICA_URLS
	rare     *rareSearches
}

// Open connects to PostgreSQL and checks the connection.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := poolConfig(cfg.URL, cfg)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	pcfg.ConnConfig.Tracer = statementTracer{observe: cfg.ObserveQuery}
	if cfg.Tracer != nil {
		pcfg.ConnConfig.Tracer = multiTracer(statementTracer{observe: cfg.ObserveQuery}, cfg.Tracer)
	}

	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("creating connection pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", redactURL(cfg.URL), err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		// Writes that need a transaction open one explicitly (DB.Tx); a
		// transaction around every single INSERT is two extra round trips.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		TranslateError:         false,
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening gorm: %w", err)
	}
	d := &DB{Pool: pool, SQL: sqlDB, Gorm: gdb, rare: newRareSearches()}
	if len(cfg.ReplicaURLs) > 0 {
		if d.replicas, err = openReplicas(ctx, cfg, gdb, sqlDB); err != nil {
			d.Close()
			return nil, fmt.Errorf("opening read replicas: %w", err)
		}
	}
	return d, nil
}

// poolConfig parses a server URL and applies the pool settings shared by
// the primary and its replicas.
func poolConfig(url string, cfg Config) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = cfg.MaxConns
	pcfg.MinConns = cfg.MinConns
	pcfg.MaxConnLifetime = cfg.MaxConnLifetime
	pcfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	pcfg.MaxConnIdleTime = cfg.MaxConnIdleTime
	rp := pcfg.ConnConfig.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = cfg.ApplicationName
	}
	if cfg.StatementTimeout > 0 {
		rp["statement_timeout"] = fmt.Sprint(cfg.StatementTimeout.Milliseconds())
	}
	return pcfg, nil
}

func multiTracer(tracers ...pgx.QueryTracer) pgx.QueryTracer { return multitracer.New(tracers...) }

// Close closes the pools.
func (d *DB) Close() {
	if d.replicas != nil {
		d.replicas.close()
	}
	_ = d.SQL.Close()
	d.Pool.Close()
}

// Ping checks that PostgreSQL answers.
func (d *DB) Ping(ctx context.Context) error { return d.Pool.Ping(ctx) }

// Users returns the user store on the pool.
func (d *DB) Users() *UserStore { return &UserStore{db: d.Gorm, rare: d.rare} }

// Roles returns the role store on the pool.
func (d *DB) Roles() *RoleStore { return &RoleStore{db: d.Gorm} }

// Groups returns the group store on the pool.
func (d *DB) Groups() *GroupStore { return &GroupStore{db: d.Gorm} }

// Tx is an open transaction. Its stores run inside it, and Gorm exposes it so
// other components (River's InsertTx, the audit log) can join the same
// transaction.
type Tx struct {
	Gorm        *gorm.DB
	afterCommit []func()
}

// AfterCommit runs fn once the transaction has committed (never when it
// rolls back). Cache invalidation belongs here: done before the commit, a
// concurrent reader could refill the cache with the old, still visible row.
func (t *Tx) AfterCommit(fn func()) { t.afterCommit = append(t.afterCommit, fn) }

// Users returns the user store inside the transaction.
func (t *Tx) Users() *UserStore { return &UserStore{db: t.Gorm} }

// Roles returns the role store inside the transaction.
func (t *Tx) Roles() *RoleStore { return &RoleStore{db: t.Gorm} }

// Groups returns the group store inside the transaction.
func (t *Tx) Groups() *GroupStore { return &GroupStore{db: t.Gorm} }

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise.
func (d *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	tx := &Tx{}
	err := d.Gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		tx.Gorm = g
		return fn(tx)
	})
	if err == nil {
		for _, f := range tx.afterCommit {
			f()
		}
	}
	return err
}

func redactURL(raw string) string {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return "(invalid URL)"
	}
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// returningAll asks PostgreSQL for the whole row after an UPDATE, saving a
// second round trip to read it back.
var returningAll = clause.Returning{}
