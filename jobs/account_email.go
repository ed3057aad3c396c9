package jobs

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// AccountEmailArgs sends an email verification or password reset link.
// The arguments hold the user id and purpose only: the worker makes the
// token when it runs, stores its hash and puts the raw token in the link,
// so no token ever sits in the job table.
type AccountEmailArgs struct {
	UserID  uuid.UUID `json:"user_id"`
	Purpose string    `json:"purpose"` // db.PurposeVerifyEmail or db.PurposeResetPassword
}

// Kind names the job.
func (AccountEmailArgs) Kind() string { return "account_email" }

// InsertOpts puts account emails on the email queue with retries.
func (AccountEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEmail, MaxAttempts: 10}
}

// Lifetimes of emailed tokens.
const (
	VerifyTokenTTL = 24 * time.Hour
	ResetTokenTTL  = 30 * time.Minute
)

// AccountEmailTx enqueues a verification or reset email inside tx. Reset
// emails are unique per recipient per minute, however many requests come in.
func (j *Jobs) AccountEmailTx(ctx context.Context, tx *db.Tx, userID uuid.UUID, purpose string) error {
	args := AccountEmailArgs{UserID: userID, Purpose: purpose}
	opts := args.InsertOpts()
	if purpose == db.PurposeResetPassword {
		opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}
	}
	_, err := j.insertTx(ctx, tx, args, &opts, uuid.Nil)
	return err
}

type accountEmailWorker struct {
	river.WorkerDefaults[AccountEmailArgs]
	*mailer
}

func (w *accountEmailWorker) Work(ctx context.Context, job *river.Job[AccountEmailArgs]) error {
	u, err := w.recipient(ctx, job.Args.UserID)
	if u == nil || err != nil {
		return err
	}
	var ttl time.Duration
	var path, subject string
	l := letter{Outro: "If you did not ask for this, ignore this email."}
	switch job.Args.Purpose {
	case db.PurposeVerifyEmail:
		if u.EmailVerifiedAt != nil {
			return nil
		}
		ttl, path, subject = VerifyTokenTTL, "/verify-email", "Confirm your email address"
		l.Intro, l.Action = "please confirm that this is your email address (the link works for 24 hours).", "Confirm your email address"
	case db.PurposeResetPassword:
		if u.Status != model.UserStatusActive {
			return nil
		}
		ttl, path, subject = ResetTokenTTL, "/reset-password", "Reset your password"
		l.Intro, l.Action = "someone asked to reset your password (the link works for 30 minutes).", "Choose a new password"
	default:
		return river.JobCancel(fmt.Errorf("unknown purpose %q", job.Args.Purpose))
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		return err
	}
	// A new token voids the older ones, so only the latest email's link works.
	if err := w.db.InTx(ctx, func(tx *db.Tx) error {
		return tx.Tokens().Issue(ctx, u.ID, job.Args.Purpose, hash, time.Now(), ttl)
	}); err != nil {
		return err
	}
	l.Link = w.link(path, url.Values{"token": {token}})
	return w.deliver(ctx, job.ID, job.Kind, u, subject, l)
}
