package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/usergraph/usergraph/embeddedpg"
	"github.com/usergraph/usergraph/jobs"
)

// A worker process killed with SIGKILL mid-job leaves its job "running" with
// nobody working it. With short rescue settings, another worker process
// rescues the job once it has run longer than JOB_RESCUE_AFTER and completes
// it: the email goes out again under the same idempotency key, so a receiver
// that saw the first, unacknowledged copy can tell it is the same email.
func TestE2E_WorkerKilledMidJobIsRescued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// PostgreSQL runs in the test process, not in a worker: a worker on the
	// embedded default takes its PostgreSQL down with it when killed, and
	// the rescue needs the database to outlive the first worker.
	dir := reachableTempDir(t)
	pg, err := embeddedpg.Start(ctx, embeddedpg.Config{
		DataDir:  filepath.Join(dir, "postgres"),
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
	})
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pg.Stop(stopCtx)
	})
	migrateUp := exec.Command(binary, "migrate", "up", "--log-format", "text")
	migrateUp.Env = append(os.Environ(), "DATABASE_URL="+pg.URL())
	if out, err := migrateUp.CombinedOutput(); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}

	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	userID := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, username, display_name) VALUES ($1, 'ada@example.com', 'ada', 'Ada Lovelace')`, userID); err != nil {
		t.Fatalf("inserting the user: %v", err)
	}
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	inserted, err := inserter.Insert(ctx, jobs.WelcomeEmailArgs{UserID: userID}, nil)
	if err != nil {
		t.Fatalf("enqueueing the welcome email: %v", err)
	}
	jobID := inserted.Job.ID
	idempotencyHeader := "X-Usergraph-Idempotency-Key: welcome_email-" + strconv.FormatInt(jobID, 10)

	mail := startStallingSMTP(t)
	// The job times out at 3/4 of JOB_RESCUE_AFTER; the kill must land
	// before that, or the job fails on its own instead of being rescued.
	// Leader failover (River's leadership outlives a killed leader by about
	// 15s) dominates the wait either way, so a few seconds cost nothing.
	env := []string{
		"DATABASE_URL=" + pg.URL(),
		"SMTP_URL=smtp://" + mail.addr,
		"PUBLIC_URL=http://usergraph.test",
		"JOB_RESCUE_AFTER=5s",
	}

	first := startJobWorker(t, dir, env)
	var firstCopy string
	select {
	case firstCopy = <-mail.stalled:
	case err := <-first.done:
		t.Fatalf("the first worker exited before sending the email: %v\n%s", err, first.logs)
	case <-time.After(90 * time.Second):
		t.Fatalf("the first worker never started sending the email:\n%s", first.logs)
	}
	if !strings.Contains(firstCopy, idempotencyHeader) || !strings.Contains(firstCopy, "ada@example.com") {
		t.Fatalf("the first copy is not the welcome email of job %d:\n%s", jobID, firstCopy)
	}

	// Killed while the SMTP server holds the message unacknowledged: the
	// worker gets no chance to record anything.
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the first worker did not die after SIGKILL")
	}
	var state string
	var attempt int
	if err := pool.QueryRow(ctx, `SELECT state, attempt FROM river_job WHERE id = $1`, jobID).Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if state != "running" || attempt != 1 {
		t.Fatalf("after the kill, want the job left running in its first attempt, got state %s attempt %d\nfirst worker:\n%s", state, attempt, first.logs)
	}
	mail.failStalled()

	second := startJobWorker(t, dir, env)
	var secondCopy string
	select {
	case secondCopy = <-mail.delivered:
	case err := <-second.done:
		t.Fatalf("the second worker exited: %v\n%s", err, second.logs)
	case <-time.After(90 * time.Second):
		t.Fatalf("the rescued job was never delivered\nsecond worker:\n%s", second.logs)
	}
	if !strings.Contains(secondCopy, idempotencyHeader) {
		t.Fatalf("the rescued delivery must carry the first attempt's idempotency key %q:\n%s", idempotencyHeader, secondCopy)
	}

	// The worker records completion just after the SMTP server accepts the
	// message; poll the row it writes.
	var errs []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := pool.QueryRow(ctx, `SELECT state, attempt, to_json(errors) FROM river_job WHERE id = $1`, jobID).Scan(&state, &attempt, &errs); err != nil {
			t.Fatal(err)
		}
		if state == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not complete after delivery: state %s attempt %d errors %s\nsecond worker:\n%s", state, attempt, errs, second.logs)
		}
		time.Sleep(50 * time.Millisecond) // polling a row another process writes, not timing the test
	}
	if attempt < 2 {
		t.Fatalf("want the job completed in a later attempt than the killed one, got attempt %d", attempt)
	}
	var attemptErrors []struct {
		Attempt int    `json:"attempt"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(errs, &attemptErrors); err != nil {
		t.Fatalf("decoding the job's errors %s: %v", errs, err)
	}
	if len(attemptErrors) == 0 || attemptErrors[0].Attempt != 1 || !strings.Contains(attemptErrors[0].Error, "rescued") {
		t.Fatalf("want the first attempt ended by River's rescuer (not by a timeout or an error), got errors %s", errs)
	}
}

// stallingSMTP is a real SMTP server in the test process that receives the
// first message in full but withholds its answer until failStalled, like a
// server the sender crashes in front of. Later messages are accepted.
type stallingSMTP struct {
	addr string
	// stalled receives the first message once it has been read.
	stalled chan string
	// delivered receives every later message, once accepted.
	delivered chan string

	mu       sync.Mutex
	messages int
	release  chan struct{}
	once     sync.Once
}

func startStallingSMTP(t *testing.T) *stallingSMTP {
	t.Helper()
	s := &stallingSMTP{stalled: make(chan string, 1), delivered: make(chan string, 16), release: make(chan struct{})}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		s.failStalled() // a stalled session must not outlive the test
		_ = srv.Close()
	})
	return s
}

// failStalled lets the stalled session answer with a temporary failure.
func (s *stallingSMTP) failStalled() { s.once.Do(func() { close(s.release) }) }

func (s *stallingSMTP) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &stallingSession{srv: s}, nil
}

type stallingSession struct{ srv *stallingSMTP }

func (*stallingSession) Reset()                               {}
func (*stallingSession) Logout() error                        { return nil }
func (*stallingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*stallingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *stallingSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.messages++
	first := s.srv.messages == 1
	s.srv.mu.Unlock()
	if !first {
		s.srv.delivered <- string(b)
		return nil
	}
	s.srv.stalled <- string(b)
	<-s.srv.release
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "stalled by the test"}
}

// jobWorker is a running `usergraph worker`.
type jobWorker struct {
	cmd  *exec.Cmd
	logs *lockedLog
	done chan error
}

// startJobWorker runs `usergraph worker` with env on top of the test's
// environment; it is killed when the test ends.
func startJobWorker(t *testing.T, dataDir string, env []string) *jobWorker {
	t.Helper()
	cmd := exec.Command(binary, "worker", "--data-dir", dataDir, "--log-format", "text")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &jobWorker{cmd: cmd, logs: &lockedLog{}, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			w.logs.writeLine(sc.Text())
		}
		w.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("killing the worker: %v", err)
		}
	})
	return w
}

// lockedLog collects a child's log lines while the test reads them.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) writeLine(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(line + "\n")
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
