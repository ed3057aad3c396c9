package jobs

import (
	"context"
	"fmt"
	"html"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
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
	db     *db.DB
	sender Sender
}

func (w *welcomeWorker) Work(ctx context.Context, job *river.Job[WelcomeEmailArgs]) error {
	u, err := w.db.Users().ByID(ctx, db.UserEmail|db.UserDisplayName, job.Args.UserID)
	if model.ErrorCode(err) == model.CodeNotFound {
		return nil // deleted since: nobody to greet
	}
	if err != nil {
		return err
	}
	name := u.DisplayName
	if name == "" {
		name = "there"
	}
	return w.sender.Send(ctx, Email{To: u.Email, Subject: "Welcome to Usergraph",
		Text:           fmt.Sprintf("Hello %s,\n\nyour Usergraph account is ready.\n", name),
		HTML:           fmt.Sprintf("<p>Hello %s,</p><p>your Usergraph account is ready.</p>", html.EscapeString(name)),
		IdempotencyKey: fmt.Sprintf("welcome-%d", job.ID)})
}
