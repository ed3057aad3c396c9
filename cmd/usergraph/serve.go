package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/embeddedpg"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/seed"
	"github.com/usergraph/usergraph/server"
	"github.com/usergraph/usergraph/telemetry"
)

// serve runs the API until ctx is canceled, then shuts down gracefully:
// in-flight requests finish (up to ShutdownTimeout), then the pool and the
// embedded PostgreSQL close. When ready is not nil it receives the listening
// address once the server accepts connections (tests use it).
func serve(ctx context.Context, cfg Config, ready chan<- string) error {
	log := newLogger(cfg)
	log.Info("starting usergraph", "config", cfg.String())
	if cfg.StackReserve > 0 {
		defer server.ReserveStacks(cfg.StackReserve)()
	}

	metrics := telemetry.NewMetrics()
	cfg.DB.ObserveQuery = metrics.ObserveQuery
	cfg.DB.Log = log
	if cfg.OTLPEndpoint != "" {
		stopTracing, err := telemetry.StartTracing(ctx, cfg.OTLPEndpoint, version)
		if err != nil {
			return err
		}
		defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
		cfg.DB.Tracer = telemetry.SQLTracer()
		log.Info("tracing to OTLP", "endpoint", cfg.OTLPEndpoint)
	}
	database, closeDB, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()

	if cfg.Embedded {
		if err := migrate(ctx, database, log); err != nil {
			return err
		}
	}
	// A bulk seed interrupted between committing its rows and rebuilding
	// their indexes left tables without their unique indexes: finish it
	// before serving anything.
	if done, err := seed.Finish(ctx, database.Pool, seed.FinishOptions{}); err != nil {
		return err
	} else if done {
		log.Warn("finished an interrupted bulk seed's index rebuild")
	}
	if cfg.Embedded {
		if err := seedDemo(ctx, database, cfg.DemoUsers, log); err != nil {
			return err
		}
		if err := ensureDemoAdmin(ctx, database, auth.NewHasher(cfg.Hash, auth.Concurrency{}), log); err != nil {
			return err
		}
	}

	var sessionCache auth.SessionCache = auth.NewMemoryCache(nil)
	metrics.WatchPool(database.Pool)
	cacheMetrics := cache.NewMetrics(metrics.Registry)
	var store cache.Store = cache.NewMemory(0)
	var budgets ratelimit.Store = ratelimit.NewMemory(nil)
	var throttleStore auth.ThrottleStore = auth.NewMemoryThrottleStore()
	// Keep the audit log's monthly partitions ahead of time on every start;
	// the maintenance job does it while running. Idempotent and cheap.
	if err := database.Maintenance().EnsureAuditPartitions(ctx, 3); err != nil {
		log.Warn("could not create audit partitions ahead", "err", err)
	}
	var rdb *redis.Client
	if cfg.RedisURL == "" {
		log.Info("REDIS_URL is unset: sessions, responses and persisted queries are cached and logins throttled in-process, which is right for a single instance only")
	} else {
		var err error
		if rdb, err = newRedisClient(cfg.RedisURL); err != nil {
			return err
		}
		defer rdb.Close()
		// The session check and the response cache's lookups of concurrent
		// requests share round trips (see cache.PipelinedReads).
		reads, err := cache.NewPipelinedReads(cfg.RedisURL, 100*time.Millisecond)
		if err != nil {
			return err
		}
		defer reads.Close()
		// No ping that could block start-up: Redis only ever saves work.
		// Repeated session checks (and the cached answers' digests read
		// along) are answered from memory, kept exact across instances by
		// invalidations every instance acknowledges. An instance that keeps
		// no copies still announces its invalidations to those that do.
		coherent := startCoherence(ctx, rdb, log)
		defer coherent.Close()
		sessionCache = auth.NewRedisCache(rdb, reads, 100*time.Millisecond, log).UseCoherence(coherent, cfg.MemoryCopies)
		store = cache.NewRedis(rdb, cache.RedisConfig{Timeout: 100 * time.Millisecond, OnStateChange: cacheMetrics.BreakerState, Reads: reads,
			Announce: coherent}, log)
		throttleStore = auth.NewRedisThrottleStore(rdb, 100*time.Millisecond)
		budgets = ratelimit.NewRedis(rdb, 100*time.Millisecond)
	}
	if len(cfg.DB.ReplicaURLs) > 0 {
		store = cache.AfterReplicaLag(store, cfg.DB.ReplicaMaxLag)
	}
	// The entity cache and invalidations are counted on the way through;
	// the response and APQ caches count their own lookups.
	counted := cache.WithMetrics(store, cacheMetrics)
	sessions := auth.NewSessions(database, sessionCache, cfg.Sessions, nil, log)
	sender, err := newSender(cfg, log)
	if err != nil {
		return err
	}
	jobCfg := cfg.Jobs
	jobCfg.Workers, jobCfg.Log, jobCfg.PublicURL, jobCfg.Cache = cfg.Workers, log, cfg.PublicURL, counted
	jobCfg.ObserveJob = metrics.ObserveJob
	work, err := jobs.New(database, sender, jobCfg)
	if err != nil {
		return err
	}
	if err := work.Start(ctx); err != nil {
		return fmt.Errorf("error starting job workers: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := work.Stop(stopCtx); err != nil {
			log.Error("error stopping job workers", "err", err)
		}
	}()
	res := resolver.New(database, resolver.Services{
		Sessions: sessions,
		Hasher:   auth.NewHasher(cfg.Hash, auth.Concurrency{}),
		Throttle: auth.NewThrottle(throttleStore, auth.ThrottleConfig{IPLimit: cfg.LoginIPLimit}, nil, log),
		Jobs:     work,
		Cache:    counted,
	}, resolver.Config{LoaderWait: cfg.LoaderWait, Log: log, SignInNotices: cfg.SignInNotices, ObserveBatch: metrics.ObserveBatch,
		DeletionGrace: cfg.DeletionGrace, ImportURLHosts: cfg.ImportURLHosts})
	queries := cache.NewPersistedQueries(store, database.PersistedQueries(), cfg.APQTTL, cacheMetrics, log)
	var responses *cache.Responses
	if cfg.ResponseCache {
		responses = cache.NewResponses(store, cache.ResponseConfig{Viewer: server.CacheViewer, RootTags: resolver.RootCacheTags, Fresh: db.PinnedToPrimary,
			Debug: cfg.Debug, Metrics: cacheMetrics, Log: log})
	}
	var writeMarks *cache.WriteMarks
	if len(cfg.DB.ReplicaURLs) > 0 {
		writeMarks = cache.NewMemoryWriteMarks(cfg.ReadYourWrites)
		if rdb != nil {
			writeMarks = cache.NewRedisWriteMarks(rdb, cfg.ReadYourWrites, 100*time.Millisecond)
		}
		log.Info("reads go to replicas", "replicas", len(cfg.DB.ReplicaURLs), "read_your_writes_window", cfg.ReadYourWrites)
	}
	var draining, closing atomic.Bool
	var limiter *ratelimit.Limiter
	if cfg.RateLimitPoints > 0 {
		limiter = ratelimit.New(budgets, cfg.RateLimitPoints, cfg.RateLimitWindow, log)
	}
	handler := server.New(server.Config{Playground: cfg.Playground, Introspection: cfg.Introspection, Debug: cfg.Debug,
		TrustedProxies: cfg.TrustedProxies, PersistedQueries: queries, PersistedOnly: cfg.PersistedOnly, Responses: responses,
		Limits: cfg.Limits, Suggestions: cfg.Suggestions, Compress: cfg.Compress, RequestTimeout: cfg.RequestTimeout, RateLimit: limiter,
		Metrics: metrics, Tracing: cfg.OTLPEndpoint != "", Draining: draining.Load, Closing: closing.Load, CORSOrigins: cfg.CORSOrigins,
		WriteMarks: writeMarks},
		res, sessions, database, log)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 30*time.Second, // the deadline ends the work first
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("ADDR: cannot listen on %s: %w", cfg.Addr, err)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("METRICS_ADDR: cannot listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		if cfg.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			log.Warn("pprof is served on the metrics listener", "url", "http://"+mln.Addr().String()+"/debug/pprof/")
		}
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics are served", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	url := "http://" + ln.Addr().String()
	log.Info("usergraph is serving", "graphql", url+"/graphql", "playground", cfg.Playground)
	if cfg.Playground {
		fmt.Fprintf(os.Stderr, "\n  Usergraph is up: open %s/ for the Playground (API at %s/graphql)\n\n", url, url)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var conns connCounter
	srv.ConnState = conns.track
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server stopped: %w", err)
	case <-ctx.Done():
	}
	// 1. Readiness fails first: load balancers that poll /readyz (HAProxy,
	// Kubernetes) stop sending new requests; requests still arriving, on
	// new or kept-alive connections, are served as usual.
	draining.Store(true)
	if cfg.DrainDelay > 0 {
		log.Info("draining: /readyz fails while load balancers notice", "delay", cfg.DrainDelay)
		time.Sleep(cfg.DrainDelay)
	}
	// 2. Stop accepting: a balancer that only notices failures (nginx) gets
	// a refused connection, which is safe to retry elsewhere because
	// nothing was sent.
	_ = ln.Close()
	// 3. Each open connection closes after its next response (the handler
	// adds Connection: close from now on), and a balancer's idle ones are
	// closed by the balancer when its keep-alive timeout ends. Waiting for
	// that, instead of closing idle connections at once, avoids closing one
	// just as the balancer sends a request on it, which it could not retry.
	closing.Store(true)
	waitCtx, cancelWait := context.WithTimeout(context.WithoutCancel(ctx), closeWait)
	conns.waitIdle(waitCtx)
	cancelWait()
	// 4. Whatever is still in flight finishes, up to SHUTDOWN_TIMEOUT.
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout, "open_connections", conns.open())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// (Shutdown reports closing the listener again; that is not a failure.)
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("error shutting down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// openDatabase connects to DATABASE_URL, or starts the embedded default
// first when it is unset. The returned func closes everything it opened.
func openDatabase(ctx context.Context, cfg Config, log *slog.Logger) (*db.DB, func(), error) {
	var pg *embeddedpg.Server
	if cfg.Embedded {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
		if err != nil {
			return nil, nil, fmt.Errorf("DATA_DIR: %w", err)
		}
		log.Info("DATABASE_URL is unset: starting the embedded PostgreSQL", "data_dir", dir)
		pg, err = embeddedpg.Start(ctx, embeddedpg.Config{DataDir: dir, BinDir: cfg.PGBinDir, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		cfg.DB.URL = pg.URL()
	}
	stopPG := func() {
		if pg != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pg.Stop(stopCtx); err != nil {
				log.Error("error stopping the embedded PostgreSQL", "err", err)
			}
		}
	}
	database, err := db.Open(ctx, cfg.DB)
	if err != nil {
		stopPG()
		return nil, nil, err
	}
	return database, func() { database.Close(); stopPG() }, nil
}

// migrate applies Usergraph's migrations, then River's (its job tables).
func migrate(ctx context.Context, database *db.DB, log *slog.Logger) error {
	m, err := db.NewMigrator(database.SQL)
	if err != nil {
		return err
	}
	if err := m.Up(ctx, log); err != nil {
		return err
	}
	return jobs.Migrate(ctx, database, log)
}

// seedDemo loads demo data into an empty database, so a newcomer's first
// `make run` has something to query.
func seedDemo(ctx context.Context, database *db.DB, users int, log *slog.Logger) error {
	if users == 0 {
		return nil
	}
	var n int64
	if err := database.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return fmt.Errorf("error counting users: %w", err)
	}
	if n > 0 {
		return nil
	}
	st, err := seed.Run(ctx, database.Pool, seed.Options{Users: users})
	if err != nil {
		return err
	}
	log.Info("loaded demo data", "users", st.Users, "role_grants", st.UserRoles, "memberships", st.Memberships, "duration", st.Duration)
	return nil
}

// closeWait bounds how long a shutdown waits, after the listener closed,
// for clients to close their connections: longer than the upstream
// keep-alive timeout in deploy/nginx (1s).
const closeWait = 3 * time.Second

// connCounter counts the server's open connections (http.Server.ConnState).
type connCounter struct {
	mu sync.Mutex
	n  int
}

func (c *connCounter) track(_ net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateNew:
		c.n++
	case http.StateClosed, http.StateHijacked:
		c.n--
	}
}

func (c *connCounter) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// waitIdle returns once no connection is open or ctx ends.
func (c *connCounter) waitIdle(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for c.open() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
