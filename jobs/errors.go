package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/model"
)

// PermanentError is a delivery the mail server refused for good (a 5xx
// answer to the sender, a recipient or the message). Retrying cannot help,
// so the job is discarded and the failure recorded in the audit log.
type PermanentError struct {
	// Code is the SMTP reply code, such as 550.
	Code int
	Err  error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("permanent failure (%d): %v", e.Code, e.Err)
}
func (e *PermanentError) Unwrap() error { return e.Err }

// TemporaryError is a delivery that may succeed later: the server was
// unreachable, answered 4xx, or refused the login. The job retries with
// backoff.
type TemporaryError struct{ Err error }

func (e *TemporaryError) Error() string { return "temporary failure: " + e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// attemptMiddleware wraps every job attempt: it reports the attempt's
// duration and outcome (metrics), and keeps internal details out of the
// job table, which the API
// shows (Job.lastError): the full error goes to the log with the job's id
// and kind, and River records only a message fit for a client. A
// model.Error keeps its message; anything else becomes a pointer to the
// log. Cancel and snooze keep their meaning.
type attemptMiddleware struct {
	river.MiddlewareDefaults
	log     *slog.Logger
	observe func(kind string, d time.Duration, err error)
}

func (m *attemptMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	// Jobs read what the request that enqueued them just wrote (the user a
	// welcome email greets), so they never read a replica that may lag.
	err := doInner(db.OnPrimary(ctx))
	if m.observe != nil {
		m.observe(job.Kind, time.Since(start), err)
	}
	if err == nil {
		return nil
	}
	var snooze *river.JobSnoozeError
	if errors.As(err, &snooze) {
		return err
	}
	m.log.ErrorContext(ctx, "job attempt failed", "job_id", job.ID, "kind", job.Kind, "attempt", job.Attempt, "err", err)
	safe := publicMessage(job, err)
	var cancel *river.JobCancelError
	if errors.As(err, &cancel) {
		return river.JobCancel(safe)
	}
	return safe
}

func publicMessage(job *rivertype.JobRow, err error) error {
	var me *model.Error
	var perm *PermanentError
	switch {
	case errors.As(err, &me):
		return errors.New(me.Message)
	case errors.As(err, &perm):
		return fmt.Errorf("the mail server refused the message for good (SMTP %d)", perm.Code)
	case errors.As(err, new(*TemporaryError)):
		return errors.New("the mail server did not take the message; it will be retried")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("the job timed out")
	default:
		return fmt.Errorf("internal error; the worker log has the details under job_id %d", job.ID)
	}
}
