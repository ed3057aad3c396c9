//go:build !race

// This test is argon2id-bound: the race detector slows hashing about
// sixfold (some two minutes for 1,000 registrations on two cores), so it is
// built without -race and `make test` runs it in a second, race-free pass.

package resolver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// A thousand registrations, one in five failing inside its transaction
// after the user row and the welcome job were written: every account that
// exists got exactly one welcome email, and no failed registration left an
// account, a job or an email behind. Failures answer INTERNAL through the
// error path, not through a recovered panic.
func TestRegistrations_InjectedFailuresLeaveOneWelcomeEmailPerUser(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{workers: true})
	ctx := context.Background()

	// The failure is injected by the database, in this test's own database:
	// the audit event is the last write of a registration, so failing it
	// must roll back the user and the welcome job written before it.
	for _, sql := range []string{
		`CREATE FUNCTION test_fail_registration() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		     IF EXISTS (SELECT 1 FROM users WHERE id = NEW.target_id AND email LIKE 'fail%') THEN
		         RAISE EXCEPTION 'injected registration failure';
		     END IF;
		     RETURN NEW;
		 END $$`,
		`CREATE TRIGGER test_fail_registration BEFORE INSERT ON audit_events
		 FOR EACH ROW WHEN (NEW.action = 'account.register') EXECUTE FUNCTION test_fail_registration()`,
	} {
		if _, err := b.db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	// The bundle's workers send the emails into b.mail; requests go through
	// a handler of their own whose error log the test reads, and whose
	// per-address limit is out of the way: this test is not about it.
	errLog := &errorLog{}
	log := slog.New(errLog)
	enqueuer, err := jobs.New(b.db, nil, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	throttle := auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{IPLimit: 1 << 30}, nil, log)
	res := resolver.New(b.db, resolver.Services{Sessions: b.sessions, Hasher: b.hasher, Throttle: throttle, Jobs: enqueuer},
		resolver.Config{Log: log})
	h := server.New(server.Config{}, res, b.sessions, b.db, log)

	const registrations = 1000
	emails := make([]string, registrations)
	for i := range emails {
		emails[i] = fmt.Sprintf("user%04d@example.com", i)
		if i%5 == 0 {
			emails[i] = fmt.Sprintf("fail%04d@example.com", i)
		}
	}
	outcomes := make([]registrationOutcome, registrations)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 2 * runtime.NumCPU() { // as many as the hasher runs at once
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < registrations; i = int(next.Add(1) - 1) {
				outcomes[i] = register(t, h, emails[i], fmt.Sprintf("user%04d", i))
			}
		})
	}
	wg.Wait()

	accepted := map[string]bool{}
	for i, o := range outcomes {
		failing := strings.HasPrefix(emails[i], "fail")
		switch {
		case !failing && o.accepted && o.code == "":
			accepted[emails[i]] = true
		case failing && o.code == "INTERNAL" && !o.accepted:
		default:
			t.Errorf("registration of %s: %s", emails[i], o.raw)
		}
	}
	if len(accepted) != registrations*4/5 {
		t.Fatalf("%d registrations accepted, want %d", len(accepted), registrations*4/5)
	}
	internal, panics := errLog.count("internal error"), errLog.count("panic in resolver")
	if internal != registrations/5 || panics != 0 {
		t.Errorf("error log: %d internal errors (want %d) and %d panics (want 0)", internal, registrations/5, panics)
	}

	// Every job the registrations committed has run once the email queue
	// holds nothing but completed jobs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int
		if err := b.db.Pool.QueryRow(ctx,
			"SELECT count(*) FROM river_job WHERE kind = 'welcome_email' AND state <> 'completed'").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d welcome jobs not completed after 60s", pending)
		}
		time.Sleep(20 * time.Millisecond) // waiting on the workers, not timing the test
	}

	var users, fails, jobRows int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE email LIKE 'fail%') FROM users`).Scan(&users, &fails); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'welcome_email'").Scan(&jobRows); err != nil {
		t.Fatal(err)
	}
	b.mail.mu.Lock()
	sent := append([]jobs.Email(nil), b.mail.sent...)
	b.mail.mu.Unlock()
	if users != len(accepted) || fails != 0 || jobRows != len(accepted) || len(sent) != len(accepted) {
		t.Fatalf("accepted %d, users %d (%d of them failed registrations), welcome jobs %d, emails %d: want them all equal and no failed registration's user",
			len(accepted), users, fails, jobRows, len(sent))
	}
	perAddress := map[string]int{}
	for _, e := range sent {
		perAddress[e.To]++
	}
	for to, n := range perAddress {
		if n != 1 || !accepted[to] {
			t.Errorf("%s got %d emails; accepted: %v", to, n, accepted[to])
		}
	}
}

// registrationOutcome is what a client was told.
type registrationOutcome struct {
	accepted bool
	code     string // the only error's code, "" when none
	raw      string
}

// register sends one registration from its own address, trying again while
// the hasher is busy (RATE_LIMITED), as a real client would.
func register(t *testing.T, h http.Handler, email, username string) registrationOutcome {
	body, err := json.Marshal(map[string]any{
		"query":     `mutation($in: RegisterInput!) { register(input: $in) { accepted } }`,
		"variables": map[string]any{"in": map[string]any{"email": email, "username": username, "password": "correct horse battery"}},
	})
	if err != nil {
		t.Error(err)
		return registrationOutcome{}
	}
	for {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var r struct {
			Data struct {
				Register *struct{ Accepted bool }
			}
			Errors []gqlError
		}
		o := registrationOutcome{raw: rec.Body.String()}
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			return o
		}
		o.accepted = r.Data.Register != nil && r.Data.Register.Accepted
		if len(r.Errors) == 1 {
			o.code, _ = r.Errors[0].Extensions["code"].(string)
		} else if len(r.Errors) > 1 {
			o.code = "(several errors)"
		}
		if o.code != "RATE_LIMITED" {
			return o
		}
		runtime.Gosched()
	}
}

// errorLog records the messages of the error-level lines logged through it.
type errorLog struct {
	mu       sync.Mutex
	messages []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, r.Message)
	return nil
}

func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) count(message string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.messages {
		if m == message {
			n++
		}
	}
	return n
}
