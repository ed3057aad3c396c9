// Package jobs owns background work on River (github.com/riverqueue/river)
// in the application's PostgreSQL: enqueueing inside the transaction of the
// change that causes a job, the workers that run them, and the periodic
// maintenance that River's elected leader schedules once across instances.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/db"
)

// Queue names. Each has its own concurrency, so a burst of exports never
// delays a password reset email.
const (
	QueueEmail       = "email"
	QueueReports     = "reports"
	QueueMaintenance = "maintenance"
)

// Config configures background work.
type Config struct {
	// Workers runs the workers in this process; false makes an API-only
	// instance that still enqueues.
	Workers bool
	// PollOnly fetches jobs by polling instead of LISTEN/NOTIFY, for
	// deployments behind PgBouncer in transaction mode.
	PollOnly bool
	// EmailConcurrency is how many emails are sent at once. Defaults to 5.
	EmailConcurrency int
	// ReportConcurrency is how many exports and imports run at once.
	// Defaults to 2.
	ReportConcurrency int
	// RescueAfter is how long a job may run before River considers its
	// worker dead and makes it available again (after a crash or SIGKILL).
	// Jobs time out at three quarters of it. Defaults to 10 minutes.
	RescueAfter time.Duration
	// Log receives River's own log lines and the details of job errors.
	Log *slog.Logger
	// PublicURL is where users reach Usergraph; emailed links start with
	// it, never with a request's Host header.
	PublicURL *url.URL
	// ExportDir holds finished export files. Instances that serve
	// downloads must see the same directory as the workers (a shared
	// volume) when they run apart.
	ExportDir string
	// ExportTTL is how long an export file stays downloadable. Defaults to
	// 7 days.
	ExportTTL time.Duration
	// AuditRetention is how long audit events are kept (whole months are
	// dropped once they are older); 0 keeps them forever.
	AuditRetention time.Duration
	// ImportURLHosts are the hosts (host or host:port) imports may be
	// fetched from; empty allows inline CSV only.
	ImportURLHosts []string
	// RetryPolicy spaces the attempts of a failing job; nil uses River's
	// default (attempt^4 seconds: 10 attempts of an email span about five
	// hours of mail server outage). Tests shorten it.
	RetryPolicy river.ClientRetryPolicy
	// Cache is told what background changes make stale (imported users,
	// purged accounts); nil when nothing is cached.
	Cache Invalidator
	// ObserveJob, when set, is told each attempt's kind, duration and
	// error (metrics).
	ObserveJob func(kind string, d time.Duration, err error)
	// MaintenanceInterval is how often the maintenance job runs. Defaults
	// to an hour.
	MaintenanceInterval time.Duration
}

func (c Config) withDefaults() Config {
	c.EmailConcurrency = cmp.Or(c.EmailConcurrency, 5)
	c.ReportConcurrency = cmp.Or(c.ReportConcurrency, 2)
	c.RescueAfter = cmp.Or(c.RescueAfter, 10*time.Minute)
	c.ExportTTL = cmp.Or(c.ExportTTL, 7*24*time.Hour)
	c.MaintenanceInterval = cmp.Or(c.MaintenanceInterval, time.Hour)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// fetchCooldown is the least time between two fetches of a queue. A queue
// cannot work more than MaxWorkers jobs per cooldown: River's 100ms default
// caps 5 email workers at about 50 emails a second, and 10ms capped the 50
// of `make bench` at 5,000. 5ms lifts that ceiling for a few more cheap
// queries while busy; idle queues are woken by LISTEN/NOTIFY, not by
// fetching (`make bench`: BenchmarkJobThroughput, BenchmarkRiverFloor).
const fetchCooldown = 5 * time.Millisecond

// Invalidator removes cached responses that read what a job changed.
type Invalidator interface {
	Invalidate(ctx context.Context, tags ...string) error
}

func invalidate(ctx context.Context, c Invalidator, tags ...string) {
	if c != nil && len(tags) > 0 {
		_ = c.Invalidate(ctx, tags...) // the store retries and bypasses itself on failure
	}
}

// Email is one message to send.
type Email struct {
	To, Subject, Text, HTML string
	// IdempotencyKey identifies the email across retries (the job's id).
	IdempotencyKey string
	// Link is the action link the email carries, if any. Only the
	// development FileSender logs it; it may hold a token.
	Link string
}

// Sender delivers email; the SMTP and development implementations live
// elsewhere. A delivery the server refused for good returns an error
// wrapping *PermanentError: it is not retried.
type Sender interface {
	Send(ctx context.Context, e Email) error
}

// Jobs enqueues, inspects and works jobs.
type Jobs struct {
	inserter *river.Client[*sql.Tx]
	worker   *river.Client[pgx.Tx]
	cfg      Config
	db       *db.DB
}

// New sets up River over d. Enqueueing goes through River's database/sql
// driver so it can join gorm's transactions; workers use the pgx driver so
// LISTEN/NOTIFY wakes them.
func New(d *db.DB, sender Sender, cfg Config) (*Jobs, error) {
	cfg = cfg.withDefaults()
	inserter, err := river.NewClient(riverdatabasesql.New(d.SQL), &river.Config{Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("error creating job inserter: %w", err)
	}
	j := &Jobs{inserter: inserter, cfg: cfg, db: d}
	if !cfg.Workers {
		return j, nil
	}
	if cfg.PublicURL == nil {
		return nil, errors.New("jobs: PublicURL is required to run workers")
	}
	if cfg.ExportDir == "" {
		return nil, errors.New("jobs: ExportDir is required to run workers")
	}
	m := &mailer{db: d, sender: sender, publicURL: cfg.PublicURL, log: cfg.Log, recipients: newRecipients(d)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &welcomeWorker{mailer: m})
	river.AddWorker(workers, &accountEmailWorker{mailer: m})
	river.AddWorker(workers, &noticeWorker{mailer: m})
	river.AddWorker(workers, &exportWorker{db: d, dir: cfg.ExportDir, mailer: m, log: cfg.Log})
	river.AddWorker(workers, &importWorker{db: d, log: cfg.Log, allowed: cfg.ImportURLHosts, cache: cfg.Cache, jobs: j})
	river.AddWorker(workers, &maintenanceWorker{db: d, cfg: cfg})
	j.worker, err = river.NewClient(riverpgxv5.New(d.Pool), &river.Config{
		Logger:   cfg.Log,
		PollOnly: cfg.PollOnly,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 2},
			QueueEmail:         {MaxWorkers: cfg.EmailConcurrency},
			QueueReports:       {MaxWorkers: cfg.ReportConcurrency},
			QueueMaintenance:   {MaxWorkers: 1},
		},
		Workers:              workers,
		Middleware:           []rivertype.Middleware{&attemptMiddleware{log: cfg.Log, observe: cfg.ObserveJob}},
		JobTimeout:           cfg.RescueAfter * 3 / 4,
		RescueStuckJobsAfter: cfg.RescueAfter,
		RetryPolicy:          cfg.RetryPolicy,
		FetchCooldown:        fetchCooldown,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(cfg.MaintenanceInterval),
			func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
			&river.PeriodicJobOpts{ID: "maintenance", RunOnStart: true})},
	})
	if err != nil {
		return nil, fmt.Errorf("error creating job workers: %w", err)
	}
	return j, nil
}

// Start starts the workers (a no-op for an API-only instance).
func (j *Jobs) Start(ctx context.Context) error {
	if j.worker == nil {
		return nil
	}
	return j.worker.Start(ctx)
}

// Stop stops fetching and waits for running jobs until ctx ends. Jobs still
// running then are cancelled, which hands them back: River records the
// interrupted attempt and another worker runs them again, without waiting
// for the rescuer.
func (j *Jobs) Stop(ctx context.Context) error {
	if j.worker == nil {
		return nil
	}
	err := j.worker.Stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := j.worker.StopAndCancel(hard); err != nil {
		return fmt.Errorf("error stopping job workers: %w", err)
	}
	return nil
}

// insertTx enqueues args inside tx: the job exists if and only if the
// transaction commits. requestedBy, when set, is recorded in the job's
// metadata so its requester may see it.
func (j *Jobs) insertTx(ctx context.Context, tx *db.Tx, args river.JobArgs, opts *river.InsertOpts, requestedBy uuid.UUID) (*rivertype.JobRow, error) {
	sqlTx, err := sqlTxOf(tx)
	if err != nil {
		return nil, err
	}
	if requestedBy != uuid.Nil {
		if opts == nil {
			o := args.(river.JobArgsWithInsertOpts).InsertOpts()
			opts = &o
		}
		opts.Metadata, _ = json.Marshal(Metadata{RequestedBy: requestedBy})
	}
	res, err := j.inserter.InsertTx(ctx, sqlTx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("error enqueueing %s: %w", args.Kind(), err)
	}
	return res.Job, nil
}

// Metadata is what Usergraph keeps in a job's metadata.
type Metadata struct {
	RequestedBy uuid.UUID `json:"requested_by,omitzero"`
}

// MetadataOf decodes a job's metadata; unknown keys (River's own) are
// ignored.
func MetadataOf(job *rivertype.JobRow) Metadata {
	var m Metadata
	_ = json.Unmarshal(job.Metadata, &m)
	return m
}

// WelcomeTx enqueues the welcome email for a new user inside tx.
func (j *Jobs) WelcomeTx(ctx context.Context, tx *db.Tx, userID uuid.UUID) error {
	_, err := j.insertTx(ctx, tx, WelcomeEmailArgs{UserID: userID}, nil, uuid.Nil)
	return err
}

// Migrate applies River's own migrations (its job tables) to the database.
func Migrate(ctx context.Context, d *db.DB, log *slog.Logger) error {
	m, err := rivermigrate.New(riverpgxv5.New(d.Pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("error creating River migrator: %w", err)
	}
	// River's migrator logs each version it applies itself.
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("error applying River migrations: %w", err)
	}
	return nil
}

// sqlTxOf is the database/sql transaction under a gorm one, for River's
// database/sql driver.
func sqlTxOf(tx *db.Tx) (*sql.Tx, error) {
	sqlTx, ok := tx.Gorm.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, errors.New("jobs: the gorm transaction is not a *sql.Tx (prepared statements on?)")
	}
	return sqlTx, nil
}
