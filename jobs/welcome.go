package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// WelcomeEmailArgs greets a new user. Arguments hold ids, never addresses or
// secrets: the worker reads the current address when it runs.
type WelcomeEmailArgs struct {
	UserID uuid.UUID `json:"user_id"`
}

// Kind names the job.
func (WelcomeEmailArgs) Kind() string { return "welcome_email" }

// InsertOpts puts welcome emails on the email queue with retries.
func (WelcomeEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEmail, MaxAttempts: 10}
}

// WelcomeManyTx enqueues the welcome emails of many users inside tx, a pgx
// transaction (an import's batch), in one COPY: a batch of a thousand costs
// about what one INSERT does. It needs the workers' client, so it runs in a
// worker process only.
func (j *Jobs) WelcomeManyTx(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	if j.worker == nil {
		return errors.New("jobs: WelcomeManyTx needs the workers (Config.Workers)")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: WelcomeEmailArgs{UserID: id}}
	}
	if _, err := j.worker.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("error enqueueing welcome emails: %w", err)
	}
	return nil
}

type welcomeWorker struct {
	river.WorkerDefaults[WelcomeEmailArgs]
	*mailer
}

func (w *welcomeWorker) Work(ctx context.Context, job *river.Job[WelcomeEmailArgs]) error {
	u, err := w.recipient(ctx, job.Args.UserID)
	if u == nil || err != nil {
		return err // nil when deleted since: nobody to greet
	}
	return w.deliver(ctx, job.ID, job.Kind, u, "Welcome to "+Product, letter{
		Intro: "your " + Product + " account is ready.",
		Link:  w.link("/", nil), Action: "Open " + Product,
	})
}
