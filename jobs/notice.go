package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// Notices: security emails that tell a user something happened to their
// account, so they can react if it was not them.
const (
	NoticePasswordChanged = "password_changed"
	NoticeNewSignIn       = "new_sign_in"
)

// NoticeEmailArgs sends a security notice. A sign-in notice names the
// session; the worker reads its device and address from the sessions
// table, so the job holds ids only.
type NoticeEmailArgs struct {
	UserID    uuid.UUID `json:"user_id"`
	Notice    string    `json:"notice"`
	SessionID uuid.UUID `json:"session_id,omitzero"`
	At        time.Time `json:"at"`
}

// Kind names the job.
func (NoticeEmailArgs) Kind() string { return "notice_email" }

// InsertOpts puts notices on the email queue with retries.
func (NoticeEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEmail, MaxAttempts: 10}
}

// NoticeTx enqueues a security notice inside tx. sessionID is the new
// session of a sign-in notice (uuid.Nil otherwise).
func (j *Jobs) NoticeTx(ctx context.Context, tx *db.Tx, userID uuid.UUID, notice string, sessionID uuid.UUID, at time.Time) error {
	_, err := j.insertTx(ctx, tx, NoticeEmailArgs{UserID: userID, Notice: notice, SessionID: sessionID, At: at.UTC()}, nil, uuid.Nil)
	return err
}

type noticeWorker struct {
	river.WorkerDefaults[NoticeEmailArgs]
	*mailer
}

func (w *noticeWorker) Work(ctx context.Context, job *river.Job[NoticeEmailArgs]) error {
	u, err := w.recipient(ctx, job.Args.UserID)
	if u == nil || err != nil {
		return err
	}
	when := job.Args.At.Format("2 January 2006 at 15:04 MST")
	reset := w.link("/forgot-password", nil)
	switch job.Args.Notice {
	case NoticePasswordChanged:
		return w.deliver(ctx, job.ID, job.Kind, u, "Your password was changed", letter{
			Intro: "the password of your " + Product + " account was changed on " + when + ". Your other sessions were signed out.",
			Outro: "If this was not you, reset your password now and contact your administrator.",
			Link:  reset, Action: "Reset your password",
		})
	case NoticeNewSignIn:
		l := letter{
			Intro: "your " + Product + " account was signed in to from a new device on " + when + ".",
			Outro: "If this was you, there is nothing to do. If not, reset your password: that signs out every session.",
			Link:  reset, Action: "Reset your password",
		}
		sess, err := w.db.Sessions().ByID(ctx, job.Args.SessionID)
		if err != nil && model.ErrorCode(err) != model.CodeNotFound {
			return err
		}
		if sess != nil {
			l.Details = append(l.Details, "Device: "+orUnknown(sess.UserAgent))
			if sess.IP != nil {
				l.Details = append(l.Details, "Address: "+*sess.IP)
			}
		}
		return w.deliver(ctx, job.ID, job.Kind, u, "New sign-in to your account", l)
	default:
		return river.JobCancel(fmt.Errorf("unknown notice %q", job.Args.Notice))
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
