package resolver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/jobs"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// bundle is what a resolver test works with: the real schema over HTTP on a
// fresh database, and an admin session whose token do sends.
type bundle struct {
	db       *db.DB
	handler  http.Handler
	sessions *auth.Sessions
	hasher   *auth.Hasher
	token    string // sent by do: the operator's (see operatorToken)
	// throttleClock drives the login throttle: lockout tests move it
	// instead of sleeping.
	throttleClock *fakeClock
	mail          *mailbox
}

type setupOpts struct {
	// loaderWait defaults to 20ms: long enough that batching does not depend
	// on goroutine scheduling under the race detector.
	loaderWait time.Duration
	// now is the clock; nil means time.Now.
	now func() time.Time
	// workers runs the job workers (emails land in the bundle's mailbox).
	workers bool
	// signInNotices emails "new sign-in" notices.
	signInNotices bool
}

func setup(t *testing.T, opts ...setupOpts) *bundle {
	t.Helper()
	return setupTB(t, opts...)
}

func setupTB(t testing.TB, opts ...setupOpts) *bundle {
	t.Helper()
	o := setupOpts{loaderWait: 20 * time.Millisecond}
	if len(opts) > 0 {
		if opts[0].loaderWait > 0 {
			o.loaderWait = opts[0].loaderWait
		}
		o.now, o.workers, o.signInNotices = opts[0].now, opts[0].workers, opts[0].signInNotices
	}
	d := dbtest.New(t)
	log := slog.New(slog.DiscardHandler)
	// Sessions keep real time: the resolvers' test clock is for the data.
	sessions := auth.NewSessions(d, auth.NewMemoryCache(nil), auth.SessionConfig{}, nil, log)
	hasher := auth.NewHasher(auth.HashParams{}.WithDefaults(), auth.Concurrency{})
	clock := &fakeClock{t: time.Now()}
	throttle := auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, clock.Now, log)
	mail := &mailbox{}
	public, _ := url.Parse("https://users.example.com/app")
	work, err := jobs.New(d, mail, jobs.Config{Workers: o.workers, PublicURL: public, ExportDir: t.TempDir(), ImportURLHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.workers {
		if err := work.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = work.Stop(ctx)
		})
	}
	res := resolver.New(d, resolver.Services{Sessions: sessions, Hasher: hasher, Throttle: throttle, Jobs: work},
		resolver.Config{LoaderWait: o.loaderWait, Now: o.now, SignInNotices: o.signInNotices,
			ImportURLHosts: []string{"127.0.0.1"}})
	h := server.New(server.Config{Introspection: true, Debug: true}, res, operatorAuthn{sessions}, d, log)
	return &bundle{db: d, handler: h, sessions: sessions, hasher: hasher, token: operatorToken, throttleClock: clock, mail: mail}
}

// mailbox records the emails the job workers send: SMTP delivery has its
// own tests against a real SMTP server (package jobs).
type mailbox struct {
	mu   sync.Mutex
	sent []jobs.Email
}

func (m *mailbox) Send(_ context.Context, e jobs.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

// waitFor returns the emails once at least n have been sent.
func (m *mailbox) waitFor(t *testing.T, n int) []jobs.Email {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.mu.Lock()
		got := append([]jobs.Email(nil), m.sent...)
		m.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d emails after 30s, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond) // waiting on the workers, not timing the test
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// operatorToken stands for an operator holding every permission, who is not
// a user in the database: tests of listings and mutations start from an
// empty table and send no session lookups. Tests of authentication itself
// use real users and real sessions (userWithSession), which operatorAuthn
// passes through to the real session store.
const operatorToken = "test-operator-token-test-operator-token-0000"

type operatorAuthn struct{ sessions *auth.Sessions }

func (a operatorAuthn) Authenticate(ctx context.Context, token string) (*auth.Viewer, error) {
	if token == operatorToken {
		return &auth.Viewer{UserID: uuid.New(), Permissions: []string{
			auth.PermUsersRead, auth.PermUsersWrite, auth.PermRolesManage, auth.PermGroupsManage, auth.PermAuditRead}}, nil
	}
	return a.sessions.Authenticate(ctx, token)
}

// userWithSession creates a user holding role (created with every built-in
// permission set if missing) and a session for them, without a password:
// fixtures need not pay for argon2id. It returns the user's global ID and
// the session token.
func (b *bundle) userWithSession(t testing.TB, email, username, role string) (string, string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var token string
	var id uuid.UUID
	err := b.db.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.Roles().EnsureBuiltin(ctx, now); err != nil {
			return err
		}
		u, err := tx.Users().Create(ctx, model.NewUser{Email: email, Username: username}, now)
		if err != nil {
			return err
		}
		id = u.ID
		if role != "" {
			if err := tx.Roles().AssignByName(ctx, u.ID, role, now); err != nil {
				return err
			}
		}
		token, _, err = b.sessions.Create(ctx, tx, u.ID, "test", "127.0.0.1")
		return err
	})
	if err != nil {
		t.Fatalf("creating %s: %v", username, err)
	}
	return model.GlobalID(model.KindUser, id), token
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// response is a decoded GraphQL response.
type response struct {
	Data       json.RawMessage `json:"data"`
	Errors     []gqlError      `json:"errors"`
	Extensions map[string]any  `json:"extensions"`
	Status     int             `json:"-"`
	Raw        string          `json:"-"`
}

// do sends one GraphQL operation and decodes the answer.
func (b *bundle) do(t testing.TB, query string, vars map[string]any) response {
	t.Helper()
	return b.doAs(t, b.token, query, vars)
}

// doAs sends an operation with a session token ("" for an anonymous
// request).
func (b *bundle) doAs(t testing.TB, token, query string, vars map[string]any) response {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	var r response
	r.Status, r.Raw = rec.Code, rec.Body.String()
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", rec.Code, rec.Body.String())
	}
	return r
}

var jsonUnmarshal = json.Unmarshal

// mustDo sends an operation that must succeed and decodes its data into out.
func (b *bundle) mustDo(t testing.TB, query string, vars map[string]any, out any) response {
	t.Helper()
	r := b.do(t, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %s", r.Raw)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decoding data: %v: %s", err, r.Raw)
		}
	}
	return r
}

// errorCode returns the code of the response's only error, failing the test
// when there is not exactly one.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want exactly one error, got %d: %s", len(r.Errors), r.Raw)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// statements is the SQL statement count the debug extension reported.
func (r response) statements(t *testing.T) int {
	t.Helper()
	n, ok := r.Extensions["sqlStatements"].(float64)
	if !ok {
		t.Fatalf("no sqlStatements extension: %s", r.Raw)
	}
	return int(n)
}

// createUser creates a user through the API and returns its global ID.
func (b *bundle) createUser(t *testing.T, email, username string) string {
	t.Helper()
	var out struct {
		CreateUser struct{ User struct{ ID string } }
	}
	b.mustDo(t, `mutation($in: CreateUserInput!) { createUser(input: $in) { user { id } } }`,
		map[string]any{"in": map[string]any{"email": email, "username": username, "displayName": username}}, &out)
	return out.CreateUser.User.ID
}

func TestSmoke_CreateAndReadUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.createUser(t, "Ada@Example.com", "ada")
	var out struct {
		User struct{ Email, Username string }
	}
	b.mustDo(t, `query($id: ID!) { user(id: $id) { email username } }`, map[string]any{"id": id}, &out)
	if out.User.Email != "ada@example.com" || out.User.Username != "ada" {
		t.Fatalf("got %+v, want the lower-cased email and the username as given", out.User)
	}
}
