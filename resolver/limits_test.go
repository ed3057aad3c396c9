package resolver_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// raw sends a request to the bundle's handler exactly as given.
func (b *bundle) raw(t *testing.T, method, contentType, accept, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/graphql", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

func body(query string) string {
	b, _ := json.Marshal(map[string]any{"query": query})
	return string(b)
}

// codeOf is the first error's code in a response body ("" when none).
func codeOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var r struct {
		Errors []struct{ Extensions map[string]any }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("not JSON (%d): %s", rec.Code, rec.Body.String())
	}
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// depthQuery nests connection fields to exactly d levels.
func depthQuery(d int) string {
	path := []string{"users(first: 1)", "nodes", "groups(first: 1)", "nodes", "members(first: 1)", "nodes"}
	var open []string
	for i := range d - 1 {
		f := path[i%len(path)]
		if i >= len(path) {
			f = path[2+(i-len(path))%4] // groups, nodes, members, nodes, ...
		}
		open = append(open, f)
	}
	leaf := "totalCount"
	if strings.HasPrefix(open[len(open)-1], "nodes") {
		leaf = "id"
	}
	return "{ " + strings.Join(open, " { ") + " { " + leaf + strings.Repeat(" }", len(open)) + " }"
}

// Each limit with a document just under it and just over it.
func TestLimits_JustUnderAndJustOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	aliases := func(n int) string {
		var s strings.Builder
		s.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&s, "a%d: __typename ", i)
		}
		return s.String() + "}"
	}
	directives := func(n int) string {
		fields := []string{"id", "email", "username", "displayName", "status", "emailVerified", "emailVerifiedAt", "lastLoginAt", "createdAt", "updatedAt"}
		var s strings.Builder
		s.WriteString("{ users(first: 1) { nodes")
		if n > 20 {
			s.WriteString(" @include(if: true)")
			n--
		}
		s.WriteString(" { ")
		for i := range n {
			d := "@include(if: true)"
			if i >= len(fields) {
				d = "@skip(if: false)"
			}
			fmt.Fprintf(&s, "%s %s ", fields[i%len(fields)], d)
		}
		return s.String() + "} } }"
	}
	sized := func(n int) string {
		q := "{ __typename }"
		return "#" + strings.Repeat("x", n-len(q)-2) + "\n" + q
	}
	tokens := func(n int) string {
		return "{ nodes(ids: [" + strings.Repeat("1 ", n) + "]) { id } }"
	}
	cases := []struct {
		name, under, over, code string
	}{
		{"depth 10", depthQuery(10), depthQuery(11), "DEPTH_LIMIT_EXCEEDED"},
		{"aliases 15", aliases(15), aliases(16), "TOO_MANY_ALIASES"},
		{"directives 20", directives(20), directives(21), "TOO_MANY_DIRECTIVES"},
		{"document 15,000 characters", sized(15_000), sized(15_001), "DOCUMENT_TOO_LARGE"},
		{"complexity 2,500", `{ users(first: 100) { nodes { id email roles { name } groups(first: 5) { nodes { name memberCount } } } } }`,
			`{ users(first: 100) { nodes { groups(first: 100) { nodes { members(first: 100) { nodes { id } } } } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	}
	for _, c := range cases {
		if len(c.under) > 15_000 && c.name != "document 15,000 characters" {
			t.Fatalf("%s: the test document is too large", c.name)
		}
		under := b.raw(t, "POST", "application/json", "", body(c.under))
		if code := codeOf(t, under); code != "" {
			t.Errorf("%s, just under: %s", c.name, under.Body.String())
		}
		over := b.raw(t, "POST", "application/json", "", body(c.over))
		if code := codeOf(t, over); code != c.code {
			t.Errorf("%s, just over: code %q, want %s: %s", c.name, code, c.code, over.Body.String())
		}
	}
	// Tokens: more than 5,000 is refused by the parser, whatever the size.
	if rec := b.raw(t, "POST", "application/json", "", body(tokens(5_100))); !strings.Contains(rec.Body.String(), "token limit") {
		t.Errorf("5,100 tokens: %s", rec.Body.String())
	}
	if rec := b.raw(t, "POST", "application/json", "", body(tokens(4_000))); strings.Contains(rec.Body.String(), "token limit") {
		t.Errorf("4,000 tokens refused: %s", rec.Body.String())
	}
}

// The HTTP layer follows the GraphQL-over-HTTP specification and turns
// away what could hurt: cross-site forms, batches, huge bodies, other
// methods; a body is never echoed back.
func TestTransport_ConformanceAndRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := body(`{ __typename }`)
	bad := body(`{ nope }`)
	cases := []struct {
		name, method, ctype, accept, body string
		status                            int
		code, respType                    string
	}{
		{"plain JSON", "POST", "application/json", "", ok, 200, "", "application/json"},
		{"graphql-response+json", "POST", "application/json", "application/graphql-response+json", ok, 200, "", "application/graphql-response+json"},
		{"invalid document, application/json", "POST", "application/json", "application/json", bad, 200, "GRAPHQL_VALIDATION_FAILED", "application/json"},
		{"invalid document, graphql-response+json", "POST", "application/json", "application/graphql-response+json", bad, 400, "GRAPHQL_VALIDATION_FAILED", "application/graphql-response+json"},
		{"text/plain (a cross-site simple request)", "POST", "text/plain", "", ok, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"form-encoded", "POST", "application/x-www-form-urlencoded", "", "query=%7B__typename%7D", 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"multipart", "POST", "multipart/form-data; boundary=x", "", "--x--", 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"a batch", "POST", "application/json", "", "[" + ok + "," + ok + "]", 400, "BATCHING_NOT_SUPPORTED", "application/json"},
		{"not JSON", "POST", "application/json", "", `{"query": "{ __typename }", "password": "hunter2-secret"`, 400, "BAD_REQUEST", "application/json"},
		{"a JSON string", "POST", "application/json", "", `"hunter2-secret"`, 400, "BAD_REQUEST", "application/json"},
		{"64 KiB + 1", "POST", "application/json", "", `{"query": "{ __typename }", "x": "` + strings.Repeat("a", 64<<10) + `"}`, 413, "REQUEST_TOO_LARGE", "application/json"},
		{"10 MiB", "POST", "application/json", "", strings.Repeat(" ", 10<<20), 413, "REQUEST_TOO_LARGE", "application/json"},
		{"Accept: text/html", "POST", "application/json", "text/html", ok, 406, "NOT_ACCEPTABLE", "application/json"},
		{"PUT", "PUT", "application/json", "", ok, 405, "METHOD_NOT_ALLOWED", "application/json"},
	}
	for _, c := range cases {
		rec := b.raw(t, c.method, c.ctype, c.accept, c.body)
		if rec.Code != c.status || codeOf(t, rec) != c.code || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.respType) {
			t.Errorf("%s: %d %s %q, want %d %s %s: %s", c.name, rec.Code, rec.Header().Get("Content-Type"), codeOf(t, rec),
				c.status, c.respType, c.code, truncateBody(rec.Body.String()))
		}
		if strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("%s: the body was echoed back: %s", c.name, rec.Body.String())
		}
	}
	// A mutation over GET is refused; a query over GET runs.
	get := func(q string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+b.token)
		rec := httptest.NewRecorder()
		b.handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := get(`{ __typename }`); rec.Code != 200 || codeOf(t, rec) != "" {
		t.Errorf("a GET query: %d %s", rec.Code, rec.Body.String())
	}
	if rec := get(`mutation { logout { ok } }`); rec.Code < 400 || !strings.Contains(rec.Body.String(), "GET") {
		t.Errorf("a GET mutation: %d %s", rec.Code, rec.Body.String())
	}
}

// An abuse corpus: none of it crashes the process, answers 5xx, or
// reveals internals.
func TestAbuse_NothingCrashesOrLeaks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nested := "{ users(filter: {status: " + strings.Repeat("[", 2000) + "ACTIVE" + strings.Repeat("]", 2000) + "}) { totalCount } }"
	corpus := []string{
		`fragment A on User { ...B } fragment B on User { ...A } { users { nodes { ...A } } }`,
		`fragment A on User { id ...A } { users { nodes { ...A } } }`,
		nested,
		"{ " + strings.Repeat("users(first: 1) { nodes { ", 200) + "id" + strings.Repeat(" } }", 200) + " }",
		`{ users(first: -5) { nodes { id } } }`,
		`{ users(first: 1000000000000) { nodes { id } } }`,
		`{ users(after: "` + strings.Repeat("A", 5000) + `") { nodes { id } } }`,
		`{ node(id: "VXNlcjpub3QtYS11dWlk") { id } }`,
		`query($x: Int!) { users(first: $x) { nodes { id } } }`,
		`{ users(filter: {search: "%_\\"'; DROP TABLE users; --"}) { nodes { id } } }`,
		`subscription { x }`,
		"{ __typename " + strings.Repeat("@include(if: true) ", 100) + "}",
		"\x00\xff{",
	}
	for i, q := range corpus {
		rec := b.raw(t, "POST", "application/json", "", body(q))
		s := rec.Body.String()
		if rec.Code >= 500 {
			t.Errorf("corpus %d: status %d: %s", i, rec.Code, truncateBody(s))
		}
		for _, internal := range []string{"SQLSTATE", "pgx", "gorm", "goroutine", ".go:", "runtime error", "panic"} {
			if strings.Contains(s, internal) {
				t.Errorf("corpus %d: the answer reveals %q: %s", i, internal, truncateBody(s))
			}
		}
	}
}

func truncateBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// Browsers on a listed origin may call the API with credentials; other
// origins get no CORS grant, so the browser keeps the answer from them.
func TestCORS_OnlyListedOriginsWithCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	log := slog.New(slog.DiscardHandler)
	res := resolver.New(b.db, resolver.Services{Sessions: b.sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log)}, resolver.Config{})
	h := server.New(server.Config{CORSOrigins: []string{"https://app.example.com"}}, res, b.sessions, b.db, log)
	preflight := func(origin string) http.Header {
		req := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Header()
	}
	if got := preflight("https://app.example.com"); got.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		got.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("a listed origin's preflight: %v", got)
	}
	if got := preflight("https://evil.example.com"); got.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin was granted: %v", got)
	}
}
