package jobs_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/riverqueue/river/rivertype"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
)

// flakySMTP is a real SMTP server whose answers the test controls: while
// down it answers 451 to every recipient; recipients in refuse get 550.
type flakySMTP struct {
	mu        sync.Mutex
	down      bool
	refuse    map[string]bool
	delivered map[string]int // recipient -> messages
	attempts  int
	addr      string
}

func (s *flakySMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &flakySession{srv: s}, nil }

type flakySession struct {
	srv *flakySMTP
	to  string
}

func (*flakySession) Reset()                               {}
func (*flakySession) Logout() error                        { return nil }
func (*flakySession) Mail(string, *smtp.MailOptions) error { return nil }
func (f *flakySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	f.srv.attempts++
	if f.srv.down {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	if f.srv.refuse[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	f.to = to
	return nil
}
func (f *flakySession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	f.srv.mu.Lock()
	f.srv.delivered[f.to]++
	f.srv.mu.Unlock()
	return nil
}

func (s *flakySMTP) set(fn func(s *flakySMTP)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *flakySMTP) snapshot() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.delivered {
		out[k] = v
	}
	return out, s.attempts
}

func startFlakySMTP(t *testing.T) *flakySMTP {
	t.Helper()
	be := &flakySMTP{refuse: map[string]bool{}, delivered: map[string]int{}}
	be.addr = serveSMTP(t, be)
	return be
}

// fastRetry retries failed jobs after 50ms instead of River's backoff.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(50 * time.Millisecond) }

// smtpTo is a sender delivering through the SMTP server at addr.
func smtpTo(t *testing.T, addr string) jobs.Sender {
	t.Helper()
	sender, err := jobs.NewSMTPSender("smtp://"+addr, "Usergraph <noreply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return sender
}

// startWorkers runs the job workers over d, delivering through SMTP at addr
// and retrying failures after 50ms.
func startWorkers(t *testing.T, d *db.DB, addr string) *jobs.Jobs {
	t.Helper()
	return newWorkers(t, d, smtpTo(t, addr), jobs.Config{RetryPolicy: fastRetry{}})
}

// welcomeUsers creates users with their welcome email jobs, as createUser
// does, and returns their ids.
func welcomeUsers(t *testing.T, d *db.DB, work *jobs.Jobs, emails ...string) []model.User {
	t.Helper()
	ctx := context.Background()
	var users []model.User
	for i, e := range emails {
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			u, err := tx.Users().Create(ctx, model.NewUser{Email: e, Username: fmt.Sprintf("user%d", i)}, time.Now())
			if err != nil {
				return err
			}
			users = append(users, *u)
			return work.WelcomeTx(ctx, tx, u.ID)
		}); err != nil {
			t.Fatal(err)
		}
	}
	return users
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// While the mail server answers 4xx the API's jobs retry with backoff; once
// it recovers every email goes out exactly once.
func TestDelivery_OutageThenRecoveryDeliversEveryEmailOnce(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	srv := startFlakySMTP(t)
	srv.set(func(s *flakySMTP) { s.down = true })
	work := startWorkers(t, d, srv.addr)
	emails := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
	welcomeUsers(t, d, work, emails...)

	// Every job fails at least twice while the server is down.
	waitUntil(t, "two failed attempts per email", 60*time.Second, func() bool {
		var n int
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'welcome_email' AND attempt >= 2`).Scan(&n)
		return n == len(emails)
	})
	var lastErr string
	if err := d.Pool.QueryRow(ctx, `SELECT errors[array_length(errors, 1)]->>'error' FROM river_job WHERE kind = 'welcome_email' LIMIT 1`).Scan(&lastErr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lastErr, "will be retried") || strings.Contains(lastErr, "451") {
		t.Errorf("the recorded error should be the client-safe message, got %q", lastErr)
	}
	if got, _ := srv.snapshot(); len(got) != 0 {
		t.Fatalf("delivered while down: %v", got)
	}

	srv.set(func(s *flakySMTP) { s.down = false })
	waitUntil(t, "every email delivered", 60*time.Second, func() bool {
		got, _ := srv.snapshot()
		return len(got) == len(emails)
	})
	waitUntil(t, "every job completed", 30*time.Second, func() bool {
		var n int
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'welcome_email' AND state = 'completed'`).Scan(&n)
		return n == len(emails)
	})
	got, _ := srv.snapshot()
	for _, e := range emails {
		if got[e] != 1 {
			t.Errorf("%s received %d emails, want exactly 1", e, got[e])
		}
	}
}

// A 5xx refusal cannot succeed later: the job is discarded after one
// attempt and the failure recorded in the audit log against the user.
func TestDelivery_PermanentRefusalIsDiscardedAndAudited(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	srv := startFlakySMTP(t)
	srv.set(func(s *flakySMTP) { s.refuse["gone@example.com"] = true })
	work := startWorkers(t, d, srv.addr)
	users := welcomeUsers(t, d, work, "gone@example.com", "here@example.com")

	waitUntil(t, "both jobs finished", 60*time.Second, func() bool {
		var n int
		_ = d.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'welcome_email' AND finalized_at IS NOT NULL`).Scan(&n)
		return n == 2
	})
	var state string
	var attempts int
	if err := d.Pool.QueryRow(ctx, `SELECT state, attempt FROM river_job WHERE kind = 'welcome_email' AND args->>'user_id' = $1`,
		users[0].ID.String()).Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != "cancelled" || attempts != 1 {
		t.Errorf("refused email: state %s after %d attempts, want cancelled after 1", state, attempts)
	}
	var code int
	if err := d.Pool.QueryRow(ctx, `SELECT (metadata->>'smtp_code')::int FROM audit_events
		WHERE action = 'email.undeliverable' AND target_id = $1`, users[0].ID).Scan(&code); err != nil {
		t.Fatalf("no audit event for the undeliverable email: %v", err)
	}
	if code != 550 {
		t.Errorf("audited SMTP code %d, want 550", code)
	}
	if got, _ := srv.snapshot(); got["here@example.com"] != 1 || got["gone@example.com"] != 0 {
		t.Errorf("deliveries: %v", got)
	}
}

// Behind PgBouncer in transaction mode LISTEN/NOTIFY does not work:
// poll-only workers still find and deliver every job.
func TestDelivery_PollOnlyWorkersDeliver(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	srv := startFlakySMTP(t)
	work := newWorkers(t, d, smtpTo(t, srv.addr), jobs.Config{PollOnly: true})
	welcomeUsers(t, d, work, "p1@example.com", "p2@example.com")
	waitUntil(t, "both emails delivered by polling", 30*time.Second, func() bool {
		got, _ := srv.snapshot()
		return got["p1@example.com"] == 1 && got["p2@example.com"] == 1
	})
}
