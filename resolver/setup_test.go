package resolver_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/db/dbtest"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// bundle is what a resolver test works with: the real schema over HTTP on a
// fresh database.
type bundle struct {
	db      *db.DB
	handler http.Handler
}

type setupOpts struct {
	// loaderWait defaults to 20ms: long enough that batching does not depend
	// on goroutine scheduling under the race detector.
	loaderWait time.Duration
}

func setup(t *testing.T, opts ...setupOpts) *bundle {
	t.Helper()
	return setupTB(t, opts...)
}

func setupTB(t testing.TB, opts ...setupOpts) *bundle {
	t.Helper()
	o := setupOpts{loaderWait: 20 * time.Millisecond}
	if len(opts) > 0 && opts[0].loaderWait > 0 {
		o.loaderWait = opts[0].loaderWait
	}
	d := dbtest.New(t)
	res := resolver.New(d, resolver.Config{LoaderWait: o.loaderWait})
	h := server.New(server.Config{Introspection: true, Debug: true}, res, d, slog.New(slog.DiscardHandler))
	return &bundle{db: d, handler: h}
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
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
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
func (b *bundle) mustDo(t *testing.T, query string, vars map[string]any, out any) response {
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
