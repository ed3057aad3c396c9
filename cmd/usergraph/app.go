package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/server"
)

// newApp declares the command line. Every setting is a flag that also reads
// an environment variable; a flag given on the command line wins.
func newApp() *cli.Command {
	return &cli.Command{
		Name:  "usergraph",
		Usage: "user management GraphQL server on PostgreSQL",
		Description: "With DATABASE_URL unset, usergraph runs on an embedded default: a private PostgreSQL\n" +
			"started from the locally installed server binaries, with its data in ./.data/postgres.",
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "serve the GraphQL API (and the Playground in development mode)",
				Flags: concat(dbFlags(), logFlags(), serveFlags(), authFlags(), mailFlags(), jobFlags()),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					return serve(ctx, cfg, nil)
				},
			},
			{
				Name:  "worker",
				Usage: "run background job workers only (no HTTP API)",
				Flags: concat(dbFlags(), logFlags(), mailFlags(), jobFlags(), []cli.Flag{
					redisFlag(),
					&cli.DurationFlag{Name: "shutdown-timeout", Value: 15 * time.Second, Sources: cli.EnvVars("SHUTDOWN_TIMEOUT"), Usage: "how long running jobs may finish after SIGTERM"},
				}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					return runWorker(ctx, cfg, cmd.Duration("shutdown-timeout"))
				},
			},
			{
				Name:  "migrate",
				Usage: "apply or inspect the database migrations",
				Commands: []*cli.Command{
					{Name: "up", Usage: "apply every pending migration", Flags: concat(dbFlags(), logFlags()), Action: migrateAction("up")},
					{Name: "down", Usage: "roll back the most recent migration", Flags: concat(dbFlags(), logFlags()), Action: migrateAction("down")},
					{Name: "status", Usage: "list migrations: applied or pending", Flags: concat(dbFlags(), logFlags()), Action: migrateAction("status")},
				},
			},
			{
				Name:  "persisted",
				Usage: "manage persisted operations (client manifests)",
				Commands: []*cli.Command{{
					Name:      "import",
					Usage:     "load an Apollo persisted query manifest (for PERSISTED_ONLY=true)",
					ArgsUsage: "MANIFEST.json",
					Flags:     concat(dbFlags(), logFlags()),
					Action:    persistedImportAction,
				}},
			},
			{
				Name:  "admin",
				Usage: "manage administrators",
				Commands: []*cli.Command{{
					Name:  "create",
					Usage: "create a user with the admin role (the first admin of an installation)",
					Description: "The password comes from --password, else from the ADMIN_PASSWORD environment variable,\n" +
						"else from the first line of standard input (so it need not appear in the process list).",
					Flags: concat(dbFlags(), logFlags(), authFlags(), []cli.Flag{
						&cli.StringFlag{Name: "email", Required: true, Usage: "the admin's email address"},
						&cli.StringFlag{Name: "username", Required: true, Usage: "the admin's username"},
						&cli.StringFlag{Name: "password", Sources: cli.EnvVars("ADMIN_PASSWORD"), Usage: "the admin's password (prefer stdin or ADMIN_PASSWORD)"},
						&cli.StringFlag{Name: "display-name", Usage: "the admin's display name"},
					}),
					Action: adminCreateAction,
				}},
			},
			{
				Name:  "seed",
				Usage: "bulk-load demo users with roles and group memberships (COPY)",
				Flags: concat(dbFlags(), logFlags(), []cli.Flag{
					&cli.IntFlag{Name: "users", Value: 1000, Usage: "number of users to add"},
					&cli.IntFlag{Name: "groups", Usage: "number of groups (default: users/500, 10 to 2000)"},
					&cli.BoolFlag{Name: "progress", Value: true, Usage: "show a progress bar"},
				}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return err
					}
					if cmd.Int("users") < 1 {
						return fmt.Errorf("--users: must be at least 1")
					}
					return seedCmd(ctx, cfg, cmd.Int("users"), cmd.Int("groups"), cmd.Bool("progress"))
				},
			},
		},
	}
}

func concat(lists ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func dbFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Sources: cli.EnvVars("DATABASE_URL"), Usage: "PostgreSQL URL; unset runs an embedded PostgreSQL in --data-dir"},
		&cli.StringFlag{Name: "data-dir", Value: "./.data", Sources: cli.EnvVars("DATA_DIR"), Usage: "where the embedded default keeps its data"},
		&cli.StringFlag{Name: "pg-bin-dir", Sources: cli.EnvVars("PG_BIN_DIR"), Usage: "PostgreSQL server binaries for the embedded default (default: $PATH, then /usr/lib/postgresql/*/bin)"},
		&cli.IntFlag{Name: "db-max-conns", Sources: cli.EnvVars("DB_MAX_CONNS"), Usage: "connection pool size (default: 4 x CPUs, at least 8)"},
		&cli.IntFlag{Name: "db-min-conns", Value: 2, Sources: cli.EnvVars("DB_MIN_CONNS"), Usage: "connections kept open when idle"},
		&cli.DurationFlag{Name: "db-max-conn-lifetime", Value: 30 * time.Minute, Sources: cli.EnvVars("DB_MAX_CONN_LIFETIME"), Usage: "recycle connections after this long"},
		&cli.DurationFlag{Name: "db-max-conn-idle-time", Value: 5 * time.Minute, Sources: cli.EnvVars("DB_MAX_CONN_IDLE_TIME"), Usage: "close idle connections above the minimum after this long"},
		&cli.DurationFlag{Name: "db-statement-timeout", Value: 10 * time.Second, Sources: cli.EnvVars("DB_STATEMENT_TIMEOUT"), Usage: "PostgreSQL statement_timeout for every session"},
	}
}

func mailFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "smtp-url", Sources: cli.EnvVars("SMTP_URL"), Usage: "smtp[s]://user:password@host:port; unset: .eml files in DATA_DIR/mail (embedded default) or no mail"},
		&cli.StringFlag{Name: "mail-from", Value: "Usergraph <noreply@usergraph.local>", Sources: cli.EnvVars("MAIL_FROM"), Usage: "sender address of emails"},
		&cli.StringFlag{Name: "public-url", Sources: cli.EnvVars("PUBLIC_URL"), Usage: "where users reach Usergraph, for emailed links (default: http://ADDR, or http://127.0.0.1:8080)"},
	}
}

func jobFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "job-poll-only", Sources: cli.EnvVars("JOB_POLL_ONLY"), Usage: "workers poll for jobs instead of LISTEN/NOTIFY (behind PgBouncer in transaction mode)"},
		&cli.IntFlag{Name: "email-concurrency", Value: 5, Sources: cli.EnvVars("EMAIL_CONCURRENCY"), Usage: "emails sent at once per process"},
		&cli.IntFlag{Name: "report-concurrency", Value: 2, Sources: cli.EnvVars("REPORT_CONCURRENCY"), Usage: "exports and imports run at once per process"},
		&cli.DurationFlag{Name: "job-rescue-after", Value: 10 * time.Minute, Sources: cli.EnvVars("JOB_RESCUE_AFTER"), Usage: "a job running this long is taken to have lost its worker and runs again; jobs time out at 3/4 of it"},
		&cli.StringFlag{Name: "export-dir", Sources: cli.EnvVars("EXPORT_DIR"), Usage: "where export files are written (default: DATA_DIR/exports); shared by every instance"},
		&cli.DurationFlag{Name: "export-ttl", Value: 7 * 24 * time.Hour, Sources: cli.EnvVars("EXPORT_TTL"), Usage: "how long export files stay downloadable"},
		&cli.DurationFlag{Name: "audit-retention", Value: 365 * 24 * time.Hour, Sources: cli.EnvVars("AUDIT_RETENTION"), Usage: "audit events older than this are dropped, a month at a time (0: keep forever)"},
		&cli.DurationFlag{Name: "maintenance-interval", Value: time.Hour, Sources: cli.EnvVars("MAINTENANCE_INTERVAL"), Usage: "how often the maintenance job runs (once across all instances)"},
		&cli.StringFlag{Name: "import-url-hosts", Sources: cli.EnvVars("IMPORT_URL_HOSTS"), Usage: "comma-separated hosts importUsers may download CSV files from (default: none)"},
		&cli.DurationFlag{Name: "account-deletion-grace", Value: 30 * 24 * time.Hour, Sources: cli.EnvVars("ACCOUNT_DELETION_GRACE"), Usage: "how long a self-deleted account can be recovered by logging in"},
		&cli.BoolFlag{Name: "sign-in-notices", Value: true, Sources: cli.EnvVars("SIGN_IN_NOTICES"), Usage: "email users when they sign in from a new device"},
	}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Sources: cli.EnvVars("LOG_LEVEL"), Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "json", Sources: cli.EnvVars("LOG_FORMAT"), Usage: "json or text"},
	}
}

// redisFlag is REDIS_URL, for the API and for workers, whose jobs
// invalidate what the API caches.
func redisFlag() cli.Flag {
	return &cli.StringFlag{Name: "redis-url", Sources: cli.EnvVars("REDIS_URL"), Usage: "Redis URL (validated; used by the caching and session layers)"}
}

func serveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Sources: cli.EnvVars("ADDR"), Usage: "address to listen on"},
		redisFlag(),
		&cli.StringFlag{Name: "mode", Sources: cli.EnvVars("MODE"), Usage: "development or production (default: development on the embedded default, else production)"},
		&cli.BoolFlag{Name: "playground", Sources: cli.EnvVars("PLAYGROUND"), Usage: "serve GraphiQL at / (default: on in development mode)"},
		&cli.BoolFlag{Name: "introspection", Sources: cli.EnvVars("INTROSPECTION"), Usage: "allow schema introspection (default: on in development mode)"},
		&cli.BoolFlag{Name: "debug", Sources: cli.EnvVars("DEBUG"), Usage: "report SQL statements per operation in the response extensions (default: on in development mode)"},
		&cli.DurationFlag{Name: "loader-wait", Value: time.Millisecond, Sources: cli.EnvVars("LOADER_WAIT"), Usage: "how long a dataloader collects keys before it queries"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 15 * time.Second, Sources: cli.EnvVars("SHUTDOWN_TIMEOUT"), Usage: "how long in-flight requests may finish after SIGTERM"},
		&cli.StringFlag{Name: "trusted-proxies", Sources: cli.EnvVars("TRUSTED_PROXIES"), Usage: "comma-separated addresses/CIDRs of load balancers whose X-Forwarded-For is believed"},
		&cli.BoolFlag{Name: "workers", Value: true, Sources: cli.EnvVars("WORKERS"), Usage: "run background job workers in this process (false: API only)"},
		&cli.StringFlag{Name: "metrics-addr", Sources: cli.EnvVars("METRICS_ADDR"), Usage: "serve Prometheus metrics at http://ADDR/metrics on this separate listener (default: off)"},
		&cli.DurationFlag{Name: "apq-ttl", Value: 24 * time.Hour, Sources: cli.EnvVars("APQ_TTL"), Usage: "how long an automatically persisted query stays registered"},
		&cli.BoolFlag{Name: "persisted-only", Sources: cli.EnvVars("PERSISTED_ONLY"), Usage: "accept only operations from imported manifests (usergraph persisted import)"},
		&cli.BoolFlag{Name: "compress", Value: true, Sources: cli.EnvVars("COMPRESS"), Usage: "gzip or zstd the answers to queries of 1 KiB and more for clients that accept it (never mutations)"},
		&cli.BoolFlag{Name: "response-cache", Value: true, Sources: cli.EnvVars("RESPONSE_CACHE"), Usage: "cache whole query responses as the schema's @cacheControl allows"},
		&cli.BoolFlag{Name: "memory-copies", Value: true, Sources: cli.EnvVars("MEMORY_COPIES"), Usage: "with Redis, answer repeated session checks from memory, kept exact across instances"},
		&cli.IntFlag{Name: "max-body-bytes", Value: 64 << 10, Sources: cli.EnvVars("MAX_BODY_BYTES"), Usage: "largest request body, checked before decoding"},
		&cli.IntFlag{Name: "max-document-chars", Value: 15_000, Sources: cli.EnvVars("MAX_DOCUMENT_CHARS"), Usage: "longest query document"},
		&cli.IntFlag{Name: "max-tokens", Value: 5_000, Sources: cli.EnvVars("MAX_TOKENS"), Usage: "most parser tokens in a document"},
		&cli.IntFlag{Name: "max-depth", Value: 10, Sources: cli.EnvVars("MAX_DEPTH"), Usage: "deepest field nesting (edges and node included)"},
		&cli.IntFlag{Name: "max-aliases", Value: 15, Sources: cli.EnvVars("MAX_ALIASES"), Usage: "most aliased fields in a document"},
		&cli.IntFlag{Name: "max-directives", Value: 20, Sources: cli.EnvVars("MAX_DIRECTIVES"), Usage: "most directives in a document"},
		&cli.IntFlag{Name: "max-complexity", Value: 2_500, Sources: cli.EnvVars("MAX_COMPLEXITY"), Usage: "most an operation may cost (list fields cost their page size times their children)"},
		&cli.BoolFlag{Name: "suggestions", Sources: cli.EnvVars("SUGGESTIONS"), Usage: "'Did you mean ...?' in validation errors (default: on in development mode)"},
		&cli.DurationFlag{Name: "request-timeout", Value: 30 * time.Second, Sources: cli.EnvVars("REQUEST_TIMEOUT"), Usage: "deadline of each request"},
		&cli.IntFlag{Name: "goroutine-stack-reserve", Value: server.DefaultStackReserve, Sources: cli.EnvVars("GOROUTINE_STACK_RESERVE"), Usage: "goroutines parked with deep stacks so that new ones start big enough for gqlgen (0: none)"},
		&cli.IntFlag{Name: "rate-limit-points", Value: 5_000, Sources: cli.EnvVars("RATE_LIMIT_POINTS"), Usage: "request budget per client per window, in points (1 per 100 complexity); 0 turns it off"},
		&cli.DurationFlag{Name: "rate-limit-window", Value: time.Hour, Sources: cli.EnvVars("RATE_LIMIT_WINDOW"), Usage: "how long a budget lasts"},
		&cli.StringFlag{Name: "otlp-endpoint", Sources: cli.EnvVars("OTEL_EXPORTER_OTLP_ENDPOINT"), Usage: "send OpenTelemetry traces over OTLP/HTTP to this URL (default: tracing off)"},
		&cli.BoolFlag{Name: "pprof", Sources: cli.EnvVars("PPROF"), Usage: "serve /debug/pprof on the metrics listener (needs METRICS_ADDR)"},
		&cli.DurationFlag{Name: "drain-delay", Sources: cli.EnvVars("DRAIN_DELAY"), Usage: "on SIGTERM, how long /readyz fails before the listener closes (default: 5s in production, 0 in development)"},
		&cli.StringFlag{Name: "cors-origins", Sources: cli.EnvVars("CORS_ORIGINS"), Usage: "comma-separated browser origins allowed to call the API cross-origin, with credentials (default: none)"},
		&cli.StringFlag{Name: "database-replica-urls", Sources: cli.EnvVars("DATABASE_REPLICA_URLS"), Usage: "comma-separated URLs of streaming replicas of DATABASE_URL; reads go to them (default: none)"},
		&cli.DurationFlag{Name: "database-replica-max-lag", Value: 5 * time.Second, Sources: cli.EnvVars("DATABASE_REPLICA_MAX_LAG"), Usage: "with replicas: a replica further behind than this gets no reads; a stale cache entry lives at most this long"},
		&cli.DurationFlag{Name: "read-your-writes-window", Value: 5 * time.Second, Sources: cli.EnvVars("READ_YOUR_WRITES_WINDOW"), Usage: "with replicas: how long after a client's mutation its reads stay on the primary"},
		&cli.IntFlag{Name: "login-ip-limit", Value: 30, Sources: cli.EnvVars("LOGIN_IP_LIMIT"), Usage: "login and registration attempts per client address per 5 minutes"},
		&cli.IntFlag{Name: "demo-users", Value: 300, Sources: cli.EnvVars("DEMO_USERS"), Usage: "users to seed on the embedded default's first start (0: none)"},
	}
}

func authFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "session-idle-timeout", Value: 30 * time.Minute, Sources: cli.EnvVars("SESSION_IDLE_TIMEOUT"), Usage: "end sessions unused for this long"},
		&cli.DurationFlag{Name: "session-absolute-timeout", Value: 12 * time.Hour, Sources: cli.EnvVars("SESSION_ABSOLUTE_TIMEOUT"), Usage: "end sessions this long after login"},
		&cli.IntFlag{Name: "session-max-per-user", Value: 10, Sources: cli.EnvVars("SESSION_MAX_PER_USER"), Usage: "live sessions per user; the oldest is ended beyond it"},
		&cli.UintFlag{Name: "password-hash-memory", Value: auth.DefaultHashMemory, Sources: cli.EnvVars("PASSWORD_HASH_MEMORY"), Usage: "argon2id memory in KiB (at least 7168)"},
		&cli.UintFlag{Name: "password-hash-iterations", Sources: cli.EnvVars("PASSWORD_HASH_ITERATIONS"), Usage: "argon2id iterations (default and floor: OWASP's pair for the memory: 5 at 7168 KiB, 4 at 9216, 2 at 19456)"},
		&cli.UintFlag{Name: "password-hash-parallelism", Value: 1, Sources: cli.EnvVars("PASSWORD_HASH_PARALLELISM"), Usage: "argon2id lanes (floor: 1)"},
	}
}
