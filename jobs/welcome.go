package jobs

import (
	"context"

	"github.com/google/uuid"
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
