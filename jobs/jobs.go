// Package jobs owns background work on River (github.com/riverqueue/river)
// in the application's PostgreSQL: enqueueing inside the transaction of the
// change that causes a job, and the workers that run them.
package jobs

import (
	"context"
	"database/sql"
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

	"github.com/usergraph/usergraph/db"
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
	// Log receives River's own log lines.
	Log *slog.Logger
	// PublicURL is where users reach Usergraph; emailed links start with
	// it, never with a request's Host header.
	PublicURL *url.URL
}

// Email is one message to send.
type Email struct {
	To, Subject, Text, HTML string
	// IdempotencyKey identifies the email across retries (the job's id).
	IdempotencyKey string
	// Link is the action link the email carries, if any. Only the
	// development FileSender logs it; it holds a token.
	Link string
}

// Sender delivers email; the SMTP and development implementations live
// elsewhere.
type Sender interface {
	Send(ctx context.Context, e Email) error
}

// Jobs enqueues and works jobs.
type Jobs struct {
	inserter *river.Client[*sql.Tx]
	worker   *river.Client[pgx.Tx]
}

// New sets up River over d. Enqueueing goes through River's database/sql
// driver so it can join gorm's transactions; workers use the pgx driver so
// LISTEN/NOTIFY wakes them.
func New(d *db.DB, sender Sender, cfg Config) (*Jobs, error) {
	if cfg.EmailConcurrency == 0 {
		cfg.EmailConcurrency = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	inserter, err := river.NewClient(riverdatabasesql.New(d.SQL), &river.Config{Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("error creating job inserter: %w", err)
	}
	j := &Jobs{inserter: inserter}
	if !cfg.Workers {
		return j, nil
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &welcomeWorker{db: d, sender: sender})
	if cfg.PublicURL == nil {
		return nil, errors.New("jobs: PublicURL is required to run workers")
	}
	river.AddWorker(workers, &accountEmailWorker{db: d, sender: sender, publicURL: cfg.PublicURL})
	j.worker, err = river.NewClient(riverpgxv5.New(d.Pool), &river.Config{
		Logger:   cfg.Log,
		PollOnly: cfg.PollOnly,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 2},
			QueueEmail:         {MaxWorkers: cfg.EmailConcurrency},
		},
		Workers:              workers,
		JobTimeout:           time.Minute,
		RescueStuckJobsAfter: 5 * time.Minute,
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

// Stop stops fetching and waits for running jobs until ctx ends; River
// hands back whatever is still running then, to be rescued later.
func (j *Jobs) Stop(ctx context.Context) error {
	if j.worker == nil {
		return nil
	}
	return j.worker.Stop(ctx)
}

// insertTx enqueues args inside tx: the job exists if and only if the
// transaction commits.
func (j *Jobs) insertTx(ctx context.Context, tx *db.Tx, args river.JobArgs) error {
	sqlTx, err := sqlTxOf(tx)
	if err != nil {
		return err
	}
	if _, err := j.inserter.InsertTx(ctx, sqlTx, args, nil); err != nil {
		return fmt.Errorf("error enqueueing %s: %w", args.Kind(), err)
	}
	return nil
}

// Queue names.
const QueueEmail = "email"

// WelcomeTx enqueues the welcome email for a new user inside tx.
func (j *Jobs) WelcomeTx(ctx context.Context, tx *db.Tx, userID uuid.UUID) error {
	return j.insertTx(ctx, tx, WelcomeEmailArgs{UserID: userID})
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
