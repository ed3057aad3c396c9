package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/server"
)

// Config is every setting of the process, read once from flags and the
// environment and validated before anything starts.
type Config struct {
	DB       db.Config
	DataDir  string // embedded default's data, used when DB.URL is empty
	PGBinDir string // embedded default's binaries; "" searches
	Embedded bool   // DB.URL was empty: run a private PostgreSQL

	LogLevel  slog.Level
	LogFormat string

	Addr            string
	RedisURL        string
	Mode            string
	Playground      bool
	Introspection   bool
	Debug           bool
	LoaderWait      time.Duration
	ShutdownTimeout time.Duration
	DemoUsers       int
	TrustedProxies  []netip.Prefix
	PublicURL       *url.URL
	Workers         bool
	MetricsAddr     string
	Limits          server.Limits
	Suggestions     bool
	RequestTimeout  time.Duration
	StackReserve    int // goroutines parked with deep stacks: server.ReserveStacks
	OTLPEndpoint    string
	CORSOrigins     []string
	Pprof           bool
	DrainDelay      time.Duration
	ReadYourWrites  time.Duration
	LoginIPLimit    int
	RateLimitPoints int
	RateLimitWindow time.Duration
	APQTTL          time.Duration
	PersistedOnly   bool
	ResponseCache   bool
	MemoryCopies    bool
	Compress        bool

	SMTPURL  string
	MailFrom string

	// Jobs holds the background work settings; Workers and PublicURL are
	// filled in by the command that starts them.
	Jobs           jobs.Config
	DeletionGrace  time.Duration
	SignInNotices  bool
	ImportURLHosts []string

	Sessions auth.SessionConfig
	Hash     auth.HashParams
}

// loadConfig reads and validates the settings the command declares. Errors
// name the environment variable, which is what an operator sets.
func loadConfig(cmd *cli.Command) (Config, error) {
	var c Config
	has := func(name string) bool {
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if n == name {
					return true
				}
			}
		}
		return false
	}
	c.DB = db.Config{
		URL:              cmd.String("database-url"),
		MaxConns:         int32(cmd.Int("db-max-conns")),
		MinConns:         int32(cmd.Int("db-min-conns")),
		MaxConnLifetime:  cmd.Duration("db-max-conn-lifetime"),
		MaxConnIdleTime:  cmd.Duration("db-max-conn-idle-time"),
		StatementTimeout: cmd.Duration("db-statement-timeout"),
	}
	c.DataDir = cmd.String("data-dir")
	c.PGBinDir = cmd.String("pg-bin-dir")
	c.Embedded = c.DB.URL == ""
	if c.DB.MaxConns < 0 {
		return c, fmt.Errorf("DB_MAX_CONNS: must be at least 1, got %d", c.DB.MaxConns)
	}
	if c.DB.MaxConns == 0 {
		c.DB.MaxConns = db.Config{}.WithDefaults().MaxConns
	}
	if c.DB.StatementTimeout <= 0 {
		return c, fmt.Errorf("DB_STATEMENT_TIMEOUT: must be positive, got %s", c.DB.StatementTimeout)
	}
	if !c.Embedded {
		if err := c.DB.Validate(); err != nil {
			return c, err
		}
	} else if c.DataDir == "" {
		return c, fmt.Errorf("DATA_DIR: must be set when DATABASE_URL is unset")
	}
	if c.DB.MinConns < 0 || c.DB.MinConns > c.DB.MaxConns {
		return c, fmt.Errorf("DB_MIN_CONNS: must be between 0 and DB_MAX_CONNS (%d), got %d", c.DB.MaxConns, c.DB.MinConns)
	}

	if err := c.LogLevel.UnmarshalText([]byte(cmd.String("log-level"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: must be debug, info, warn or error, got %q", cmd.String("log-level"))
	}
	c.LogFormat = cmd.String("log-format")
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("LOG_FORMAT: must be json or text, got %q", c.LogFormat)
	}
	if has("smtp-url") {
		public := cmd.String("public-url")
		if public == "" {
			public = "http://127.0.0.1:8080"
			if has("addr") {
				public = "http://" + cmd.String("addr")
			}
		}
		u, err := url.Parse(public)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("PUBLIC_URL: must be an http(s) URL such as https://users.example.com, got %q", public)
		}
		c.PublicURL = u
		c.SMTPURL, c.MailFrom = cmd.String("smtp-url"), cmd.String("mail-from")
		if c.SMTPURL != "" {
			if _, err := jobs.NewSMTPSender(c.SMTPURL, c.MailFrom); err != nil {
				return c, err
			}
		}
	}
	if has("job-rescue-after") {
		if err := c.loadJobs(cmd); err != nil {
			return c, err
		}
	}
	if has("session-idle-timeout") {
		c.Sessions = auth.SessionConfig{
			IdleTimeout:     cmd.Duration("session-idle-timeout"),
			AbsoluteTimeout: cmd.Duration("session-absolute-timeout"),
			MaxPerUser:      cmd.Int("session-max-per-user"),
		}.WithDefaults()
		if err := c.Sessions.Validate(); err != nil {
			return c, err
		}
		c.Hash = auth.HashParams{
			Memory:      uint32(cmd.Uint("password-hash-memory")),
			Iterations:  uint32(cmd.Uint("password-hash-iterations")),
			Parallelism: uint8(min(cmd.Uint("password-hash-parallelism"), 255)),
		}.WithDefaults()
		if err := c.Hash.Validate(); err != nil {
			return c, err
		}
	}
	if has("redis-url") {
		c.RedisURL = cmd.String("redis-url")
		if c.RedisURL != "" {
			if _, err := redis.ParseURL(c.RedisURL); err != nil {
				return c, fmt.Errorf("REDIS_URL: not a valid Redis URL (redis://[user:password@]host:port/db)")
			}
		}
	}
	if !has("addr") {
		return c, nil
	}

	c.Addr = cmd.String("addr")
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("ADDR: must be host:port, got %q", c.Addr)
	}
	c.Mode = cmd.String("mode")
	switch c.Mode {
	case "":
		c.Mode = "production"
		if c.Embedded {
			c.Mode = "development"
		}
	case "development", "production":
	default:
		return c, fmt.Errorf("MODE: must be development or production, got %q", c.Mode)
	}
	dev := c.Mode == "development"
	boolOr := func(name string, def bool) bool {
		if cmd.IsSet(name) {
			return cmd.Bool(name)
		}
		return def
	}
	c.Playground = boolOr("playground", dev)
	c.Introspection = boolOr("introspection", dev)
	c.Debug = boolOr("debug", dev)
	c.LoaderWait = cmd.Duration("loader-wait")
	if c.LoaderWait <= 0 || c.LoaderWait > 100*time.Millisecond {
		return c, fmt.Errorf("LOADER_WAIT: must be between 1ns and 100ms, got %s", c.LoaderWait)
	}
	c.ShutdownTimeout = cmd.Duration("shutdown-timeout")
	if c.ShutdownTimeout <= 0 {
		return c, fmt.Errorf("SHUTDOWN_TIMEOUT: must be positive, got %s", c.ShutdownTimeout)
	}
	var err error
	if c.TrustedProxies, err = server.ParseTrustedProxies(cmd.String("trusted-proxies")); err != nil {
		return c, err
	}
	c.Workers = cmd.Bool("workers")
	c.MetricsAddr = cmd.String("metrics-addr")
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return c, fmt.Errorf("METRICS_ADDR: must be host:port, got %q", c.MetricsAddr)
		}
	}
	c.Limits = server.Limits{
		MaxBody: int64(cmd.Int("max-body-bytes")), MaxDocument: cmd.Int("max-document-chars"), MaxTokens: cmd.Int("max-tokens"),
		MaxDepth: cmd.Int("max-depth"), MaxAliases: cmd.Int("max-aliases"), MaxDirectives: cmd.Int("max-directives"),
		MaxComplexity: cmd.Int("max-complexity"),
	}
	for name, v := range map[string]int64{"MAX_BODY_BYTES": c.Limits.MaxBody, "MAX_DOCUMENT_CHARS": int64(c.Limits.MaxDocument),
		"MAX_TOKENS": int64(c.Limits.MaxTokens), "MAX_DEPTH": int64(c.Limits.MaxDepth), "MAX_ALIASES": int64(c.Limits.MaxAliases),
		"MAX_DIRECTIVES": int64(c.Limits.MaxDirectives), "MAX_COMPLEXITY": int64(c.Limits.MaxComplexity)} {
		if v < 1 {
			return c, fmt.Errorf("%s: must be at least 1, got %d", name, v)
		}
	}
	c.Suggestions = boolOr("suggestions", dev)
	c.RequestTimeout = cmd.Duration("request-timeout")
	c.StackReserve = cmd.Int("goroutine-stack-reserve")
	if c.StackReserve < 0 || c.StackReserve > 10_000 {
		return c, fmt.Errorf("GOROUTINE_STACK_RESERVE: must be between 0 and 10000, got %d", c.StackReserve)
	}
	if c.RequestTimeout < time.Second {
		return c, fmt.Errorf("REQUEST_TIMEOUT: must be at least 1s, got %s", c.RequestTimeout)
	}
	for _, o := range strings.Split(cmd.String("cors-origins"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || o == "*" {
			return c, fmt.Errorf("CORS_ORIGINS: each origin must look like https://app.example.com (no path, no *), got %q", o)
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	c.OTLPEndpoint = cmd.String("otlp-endpoint")
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL such as http://collector:4318, got %q", c.OTLPEndpoint)
		}
	}
	c.Pprof = cmd.Bool("pprof")
	if c.Pprof && c.MetricsAddr == "" {
		return c, fmt.Errorf("PPROF: needs METRICS_ADDR (pprof is served on the metrics listener, never on the API's)")
	}
	c.DrainDelay = 5 * time.Second
	if dev {
		c.DrainDelay = 0
	}
	if cmd.IsSet("drain-delay") {
		c.DrainDelay = cmd.Duration("drain-delay")
	}
	if c.DrainDelay < 0 || c.DrainDelay >= c.ShutdownTimeout+time.Minute {
		return c, fmt.Errorf("DRAIN_DELAY: must be between 0 and a minute past SHUTDOWN_TIMEOUT, got %s", c.DrainDelay)
	}
	for _, u := range strings.Split(cmd.String("database-replica-urls"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.DB.ReplicaURLs = append(c.DB.ReplicaURLs, u)
		}
	}
	if len(c.DB.ReplicaURLs) > 0 {
		if c.Embedded {
			return c, fmt.Errorf("DATABASE_REPLICA_URLS: needs DATABASE_URL (the embedded default has no replicas)")
		}
		if err := c.DB.Validate(); err != nil {
			return c, err
		}
	}
	c.DB.ReplicaMaxLag = cmd.Duration("database-replica-max-lag")
	if c.DB.ReplicaMaxLag < 100*time.Millisecond || c.DB.ReplicaMaxLag > time.Minute {
		return c, fmt.Errorf("DATABASE_REPLICA_MAX_LAG: must be between 100ms and 1m, got %s", c.DB.ReplicaMaxLag)
	}
	c.ReadYourWrites = cmd.Duration("read-your-writes-window")
	if c.ReadYourWrites < c.DB.ReplicaMaxLag || c.ReadYourWrites > time.Minute {
		// Shorter, a writer could read a stale cache entry (which lives up
		// to the max lag) right after its window.
		return c, fmt.Errorf("READ_YOUR_WRITES_WINDOW: must be between DATABASE_REPLICA_MAX_LAG (%s) and 1m, got %s", c.DB.ReplicaMaxLag, c.ReadYourWrites)
	}
	c.LoginIPLimit = cmd.Int("login-ip-limit")
	if c.LoginIPLimit < 1 {
		return c, fmt.Errorf("LOGIN_IP_LIMIT: must be at least 1, got %d", c.LoginIPLimit)
	}
	c.RateLimitPoints, c.RateLimitWindow = cmd.Int("rate-limit-points"), cmd.Duration("rate-limit-window")
	if c.RateLimitPoints < 0 {
		return c, fmt.Errorf("RATE_LIMIT_POINTS: must be 0 (off) or more, got %d", c.RateLimitPoints)
	}
	if c.RateLimitWindow < time.Second {
		return c, fmt.Errorf("RATE_LIMIT_WINDOW: must be at least 1s, got %s", c.RateLimitWindow)
	}
	c.APQTTL = cmd.Duration("apq-ttl")
	if c.APQTTL < time.Minute {
		return c, fmt.Errorf("APQ_TTL: must be at least 1m, got %s", c.APQTTL)
	}
	c.PersistedOnly = cmd.Bool("persisted-only")
	c.ResponseCache = cmd.Bool("response-cache")
	c.MemoryCopies = cmd.Bool("memory-copies")
	c.Compress = cmd.Bool("compress")
	c.DemoUsers = cmd.Int("demo-users")
	if c.DemoUsers < 0 || c.DemoUsers > 1_000_000 {
		return c, fmt.Errorf("DEMO_USERS: must be between 0 and 1000000, got %d", c.DemoUsers)
	}
	return c, nil
}

// loadJobs reads the background work settings.
func (c *Config) loadJobs(cmd *cli.Command) error {
	j := jobs.Config{
		PollOnly:            cmd.Bool("job-poll-only"),
		EmailConcurrency:    cmd.Int("email-concurrency"),
		ReportConcurrency:   cmd.Int("report-concurrency"),
		RescueAfter:         cmd.Duration("job-rescue-after"),
		ExportDir:           cmd.String("export-dir"),
		ExportTTL:           cmd.Duration("export-ttl"),
		AuditRetention:      cmd.Duration("audit-retention"),
		MaintenanceInterval: cmd.Duration("maintenance-interval"),
	}
	switch {
	case j.EmailConcurrency < 1 || j.EmailConcurrency > 1000:
		return fmt.Errorf("EMAIL_CONCURRENCY: must be between 1 and 1000, got %d", j.EmailConcurrency)
	case j.ReportConcurrency < 1 || j.ReportConcurrency > 100:
		return fmt.Errorf("REPORT_CONCURRENCY: must be between 1 and 100, got %d", j.ReportConcurrency)
	case j.RescueAfter < time.Second:
		return fmt.Errorf("JOB_RESCUE_AFTER: must be at least 1s, got %s", j.RescueAfter)
	case j.ExportTTL < time.Minute:
		return fmt.Errorf("EXPORT_TTL: must be at least 1m, got %s", j.ExportTTL)
	case j.AuditRetention < 0 || j.AuditRetention > 0 && j.AuditRetention < 31*24*time.Hour:
		return fmt.Errorf("AUDIT_RETENTION: must be 0 (keep forever) or at least 744h (a month), got %s", j.AuditRetention)
	case j.MaintenanceInterval < time.Second:
		return fmt.Errorf("MAINTENANCE_INTERVAL: must be at least 1s, got %s", j.MaintenanceInterval)
	}
	if j.ExportDir == "" {
		j.ExportDir = filepath.Join(c.DataDir, "exports")
	}
	c.Jobs = j
	c.DeletionGrace = cmd.Duration("account-deletion-grace")
	if c.DeletionGrace < 0 {
		return fmt.Errorf("ACCOUNT_DELETION_GRACE: must not be negative, got %s", c.DeletionGrace)
	}
	c.SignInNotices = cmd.Bool("sign-in-notices")
	for _, h := range strings.Split(cmd.String("import-url-hosts"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.ImportURLHosts = append(c.ImportURLHosts, h)
		}
	}
	c.Jobs.ImportURLHosts = c.ImportURLHosts
	return nil
}

func newLogger(c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// String renders the configuration for the start-up log, secrets masked.
func (c Config) String() string {
	var b strings.Builder
	dbURL := "(embedded in " + c.DataDir + ")"
	if !c.Embedded {
		dbURL = maskURL(c.DB.URL)
	}
	fmt.Fprintf(&b, "database=%s max_conns=%d mode=%s addr=%s playground=%t introspection=%t debug=%t",
		dbURL, c.DB.MaxConns, c.Mode, c.Addr, c.Playground, c.Introspection, c.Debug)
	if n := len(c.DB.ReplicaURLs); n > 0 {
		fmt.Fprintf(&b, " replicas=%d read_your_writes=%s", n, c.ReadYourWrites)
	}
	if c.RedisURL != "" {
		fmt.Fprintf(&b, " redis=%s", maskURL(c.RedisURL))
	}
	return b.String()
}
