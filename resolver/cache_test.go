package resolver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// cachedInstance is a Usergraph process with the response cache and
// persisted queries on store, sharing the bundle's database and session
// store (Redis-backed sessions are tested elsewhere).
func (b *bundle) cachedInstance(t testing.TB, store cache.Store, persistedOnly bool) http.Handler {
	return b.instanceWith(t, store, persistedOnly, true)
}

// instanceWith is cachedInstance with the response cache optional (APQ and
// the entity cache stay on).
func (b *bundle) instanceWith(t testing.TB, store cache.Store, persistedOnly, responses bool) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	var rc *cache.Responses
	if responses {
		rc = cache.NewResponses(store, cache.ResponseConfig{Viewer: server.CacheViewer, RootTags: resolver.RootCacheTags, Debug: true})
	}
	return server.New(server.Config{Debug: true,
		PersistedQueries: cache.NewPersistedQueries(store, b.db.PersistedQueries(), time.Hour, nil, log),
		PersistedOnly:    persistedOnly,
		Responses:        rc,
	}, b.cachingResolver(store), b.sessions, b.db, log)
}

// cachingResolver is the resolvers of an instance whose entity cache is
// store.
func (b *bundle) cachingResolver(store cache.Store) *resolver.Resolver {
	log := slog.New(slog.DiscardHandler)
	return resolver.New(b.db, resolver.Services{Sessions: b.sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log), Cache: store},
		resolver.Config{LoaderWait: time.Millisecond})
}

// sent is one answer of an instance, decoded.
type sent struct {
	status  int
	header  http.Header
	body    string
	data    map[string]any
	errors  []gqlError
	cache   string // hit, miss or bypass
	queries int    // SQL statements
}

func send(t testing.TB, h http.Handler, method, token, query string, vars map[string]any, ext map[string]any, header ...string) sent {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		q := url.Values{}
		if query != "" {
			q.Set("query", query)
		}
		if vars != nil {
			v, _ := json.Marshal(vars)
			q.Set("variables", string(v))
		}
		if ext != nil {
			e, _ := json.Marshal(ext)
			q.Set("extensions", string(e))
		}
		req = httptest.NewRequest(http.MethodGet, "/graphql?"+q.Encode(), nil)
	} else {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars, "extensions": ext})
		req = httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	s := sent{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if rec.Code == http.StatusNotModified {
		return s
	}
	var r struct {
		Data       map[string]any
		Errors     []gqlError
		Extensions struct {
			Cache         struct{ Response string }
			SQLStatements int `json:"sqlStatements"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("not JSON (%d): %s", rec.Code, rec.Body.String())
	}
	s.data, s.errors, s.cache, s.queries = r.Data, r.Errors, r.Extensions.Cache.Response, r.Extensions.SQLStatements
	return s
}

func (s sent) mustOK(t testing.TB) sent {
	t.Helper()
	if len(s.errors) > 0 || s.status != http.StatusOK {
		t.Fatalf("errors (%d): %s", s.status, s.body)
	}
	return s
}

// A cached response is shared by every instance, and a change through any
// instance removes exactly the responses that read what it changed, before
// the mutation answers: nobody reads their own write stale.
func TestResponseCache_ExactInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	log := slog.New(slog.DiscardHandler)
	a := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	c := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, admin2 := b.userWithSession(t, "admin2@example.com", "admin2", "admin")
	ada := b.createUser(t, "ada@example.com", "ada")
	b.createUser(t, "bob@example.com", "bob")
	group := createGroup(t, b, "engineers")
	list := `{ users(first: 10) { totalCount nodes { username displayName groups(first: 5) { nodes { name memberCount } } } } }`

	first := send(t, a, "POST", admin, list, nil, nil).mustOK(t)
	if first.cache != "miss" || first.queries == 0 {
		t.Fatalf("first read: cache %q, %d statements", first.cache, first.queries)
	}
	// The other instance, and another admin with the same permissions,
	// read it from the cache: no SQL at all.
	again := send(t, c, "POST", admin2, list, nil, nil).mustOK(t)
	if again.cache != "hit" || again.queries != 0 || again.body == "" || fmt.Sprint(again.data) != fmt.Sprint(first.data) {
		t.Fatalf("second read through another instance: cache %q, %d statements\n%s", again.cache, again.queries, again.body)
	}

	steps := []struct {
		name, mutation string
		vars           map[string]any
		want           string // in the list after the change
	}{
		{"rename", `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Countess"}) { user { id } } }`, map[string]any{"id": ada}, `"displayName":"Countess"`},
		{"create", `mutation { createUser(input: {email: "cyd@example.com", username: "cyd"}) { user { id } } }`, nil, `"username":"cyd"`},
		{"join", `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`, map[string]any{"g": group, "u": ada}, `"memberCount":1`},
	}
	for _, s := range steps {
		send(t, c, "POST", admin, s.mutation, s.vars, nil).mustOK(t)
		after := send(t, a, "POST", admin, list, nil, nil).mustOK(t)
		if after.cache != "miss" || !strings.Contains(after.body, s.want) {
			t.Fatalf("after %s through the other instance: cache %q\n%s", s.name, after.cache, after.body)
		}
	}
	if got := send(t, a, "POST", admin, list, nil, nil).mustOK(t); got.cache != "hit" || !strings.Contains(got.body, `"totalCount":5`) {
		t.Fatalf("cached again: %q %s", got.cache, got.body)
	}
	// Deleting a member changes the group's count, which the cached list
	// shows under another user.
	bob := b.idOf(t, "bob")
	send(t, c, "POST", admin, `mutation($g: ID!, $u: ID!) { addGroupMember(input: {groupId: $g, userId: $u}) { group { id } } }`, map[string]any{"g": group, "u": bob}, nil).mustOK(t)
	before := send(t, a, "POST", admin, list, nil, nil).mustOK(t)
	if !strings.Contains(before.body, `"memberCount":2`) {
		t.Fatalf("two members: %s", before.body)
	}
	send(t, c, "POST", admin, `mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedUserId } }`, map[string]any{"id": bob}, nil).mustOK(t)
	if after := send(t, a, "POST", admin, list, nil, nil).mustOK(t); after.cache != "miss" || !strings.Contains(after.body, `"memberCount":1`) || strings.Contains(after.body, `"bob"`) {
		t.Fatalf("after deleting bob: %q %s", after.cache, after.body)
	}
}

// Public responses are shared by everyone with the same permissions;
// a private field (an email) makes the response the viewer's alone; fields
// that must never be cached make the whole operation bypass the cache.
func TestResponseCache_ScopesAndUncacheableFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.cachedInstance(t, cache.NewMemory(0), false)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, admin2 := b.userWithSession(t, "admin2@example.com", "admin2", "admin")
	_, member := b.userWithSession(t, "member@example.com", "member", "member")
	q := `{ users(first: 5) { nodes { username email } } }`
	send(t, h, "POST", admin, q, nil, nil).mustOK(t)
	if r := send(t, h, "POST", admin2, q, nil, nil).mustOK(t); r.cache != "miss" {
		t.Errorf("a private response served to another user: %q", r.cache)
	}
	roles := `{ roles(first: 5) { nodes { name } } }`
	send(t, h, "POST", admin, roles, nil, nil).mustOK(t)
	if r := send(t, h, "POST", admin2, roles, nil, nil).mustOK(t); r.cache != "hit" {
		t.Errorf("a public response not shared by equal permissions: %q", r.cache)
	}
	if r := send(t, h, "POST", member, roles, nil, nil).mustOK(t); r.cache != "miss" {
		t.Errorf("a public response shared across different permissions: %q", r.cache)
	}
	if r := send(t, h, "POST", "", roles, nil, nil); len(r.errors) == 0 {
		t.Errorf("an anonymous caller got the cached roles: %s", r.body)
	}
	for _, q := range []string{`{ me { id } }`, `{ mySessions(first: 5) { nodes { id } } }`,
		`{ users(first: 5) { nodes { sessions(first: 2) { nodes { id } } } } }`, `{ auditEvents(first: 1) { nodes { action } } }`,
		`{ __schema { queryType { name } } }`} {
		send(t, h, "POST", admin, q, nil, nil)
		if r := send(t, h, "POST", admin, q, nil, nil); r.cache != "bypass" {
			t.Errorf("%s: cache %q, want bypass", q, r.cache)
		}
	}
	// The mutation's own errors are never cached, and neither are errors.
	bad := `query($id: ID!) { user(id: $id) { username } }`
	send(t, h, "POST", admin, bad, map[string]any{"id": "nope"}, nil)
	if r := send(t, h, "POST", admin, bad, map[string]any{"id": "nope"}, nil); r.cache == "hit" {
		t.Error("an error response was cached")
	}
}

// Automatic persisted queries through the Apollo protocol, shared by every
// instance, over POST and GET; GET answers of cacheable queries carry
// Cache-Control and an ETag and answer If-None-Match with 304.
func TestAPQ_ProtocolAcrossInstancesAndHTTPCaching(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	log := slog.New(slog.DiscardHandler)
	a := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	c := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	q := `{ roles(first: 3) { nodes { name } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}

	r := send(t, a, "POST", admin, "", nil, ext)
	if len(r.errors) != 1 || r.errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("unknown hash: %s", r.body)
	}
	send(t, a, "POST", admin, q, nil, ext).mustOK(t)
	if r := send(t, c, "POST", admin, "", nil, ext).mustOK(t); !strings.Contains(r.body, `"name":"admin"`) {
		t.Fatalf("the hash registered through another instance: %s", r.body)
	}
	wrong := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if r := send(t, a, "POST", admin, q, nil, wrong); len(r.errors) == 0 {
		t.Fatalf("a wrong hash was accepted: %s", r.body)
	}

	g := send(t, c, "GET", admin, "", nil, ext).mustOK(t)
	etag := g.header.Get("ETag")
	if !strings.HasPrefix(g.header.Get("Cache-Control"), "private, max-age=") || etag == "" {
		t.Fatalf("GET headers: %v", g.header)
	}
	if r := send(t, c, "GET", admin, "", nil, ext, "If-None-Match", etag); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d %s", r.status, r.body)
	}
	if r := send(t, c, "GET", admin, `{ me { id } }`, nil, nil); r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("an uncacheable GET: Cache-Control %q", r.header.Get("Cache-Control"))
	}
}

// In persisted-only mode, only operations from an imported manifest run.
func TestPersistedOnly_RefusesEverythingButTheManifest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.cachedInstance(t, cache.NewMemory(0), true)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	known := `query Roles { roles(first: 3) { nodes { name } } }`
	if _, err := b.db.PersistedQueries().Import(context.Background(), []db.PersistedQuery{{Hash: cache.QueryHash(known), Body: known, Name: "Roles"}}); err != nil {
		t.Fatal(err)
	}
	hashOf := func(q string) map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}
	}
	if r := send(t, h, "POST", admin, "", nil, hashOf(known)).mustOK(t); !strings.Contains(r.body, `"name":"admin"`) {
		t.Fatalf("a manifest operation: %s", r.body)
	}
	other := `{ users(first: 1) { nodes { id } } }`
	for name, r := range map[string]sent{
		"a plain document":       send(t, h, "POST", admin, other, nil, nil),
		"an unknown hash":        send(t, h, "POST", admin, "", nil, hashOf(other)),
		"registering a new hash": send(t, h, "POST", admin, other, nil, hashOf(other)),
	} {
		if len(r.errors) != 1 || r.data != nil && r.data["users"] != nil {
			t.Errorf("%s: %s", name, r.body)
			continue
		}
		if code := r.errors[0].Extensions["code"]; code != "PERSISTED_QUERY_REQUIRED" && code != "PERSISTED_QUERY_NOT_FOUND" {
			t.Errorf("%s: code %v", name, code)
		}
	}
}

// Redis stopped, hung or flushed in the middle of a run: every query still
// answers correctly from PostgreSQL within the timeouts, and caching
// resumes when Redis is back.
func TestResponseCache_RedisStoppedPausedFlushed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	store := cache.NewRedis(rs.Client(t), cache.RedisConfig{OpenFor: 300 * time.Millisecond, Reads: rs.Reads(t, 100*time.Millisecond)},
		slog.New(slog.DiscardHandler))
	h := b.cachedInstance(t, store, false)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	ada := b.createUser(t, "ada@example.com", "ada")
	q := `{ users(first: 10) { nodes { username displayName } } }`
	rename := func(name string) {
		t.Helper()
		send(t, h, "POST", admin, `mutation($id: ID!, $n: String!) { updateUser(input: {id: $id, displayName: $n}) { user { id } } }`,
			map[string]any{"id": ada, "n": name}, nil).mustOK(t)
	}
	read := func(want string) sent {
		t.Helper()
		start := time.Now()
		r := send(t, h, "POST", admin, q, nil, nil).mustOK(t)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a read took %s", d)
		}
		if !strings.Contains(r.body, `"displayName":"`+want+`"`) {
			t.Fatalf("want %s: %s", want, r.body)
		}
		return r
	}
	read("ada")
	if read("ada").cache != "hit" {
		t.Fatal("not cached while Redis is up")
	}

	rs.Stop()
	rename("stopped")
	for range 5 {
		read("stopped")
	}

	rs.Restart(t)
	rename("restarted")
	waitCached := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for read(want).cache != "hit" {
			if time.Now().After(deadline) {
				t.Fatalf("caching did not resume with %s", want)
			}
			time.Sleep(100 * time.Millisecond) // waiting for the breaker to close
		}
	}
	waitCached("restarted")

	rs.Pause(t)
	rename("paused") // the invalidation cannot reach Redis
	for range 3 {
		read("paused")
	}
	rs.Resume(t)
	waitCached("paused") // never "restarted": the deferred invalidation went first

	if err := rs.Client(t).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if r := read("paused"); r.cache != "miss" {
		t.Fatalf("after a flush: %q", r.cache)
	}
	waitCached("paused")
}

// Users by id and their roles are read through the shared entity cache:
// a second operation on another instance needs no SQL for them, and a
// change to the user or to one of their roles is seen at once.
func TestEntityCache_ReadThroughWithExactInvalidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	log := slog.New(slog.DiscardHandler)
	// Response caching off for this query shape: a session list makes the
	// operation uncacheable, so the entity cache is what is measured.
	a := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	c := b.cachedInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), false)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	ada := b.createUser(t, "ada@example.com", "ada")
	role := createRole(t, b, "pilots")
	send(t, a, "POST", admin, `mutation($r: ID!, $u: ID!) { assignRole(input: {userId: $u, roleId: $r}) { role { id } } }`,
		map[string]any{"r": role, "u": ada}, nil).mustOK(t)
	q := `query($id: ID!) { node(id: $id) { ... on User { username roles { name } sessions(first: 1) { nodes { id } } } } }`
	vars := map[string]any{"id": ada}
	first := send(t, a, "POST", admin, q, vars, nil).mustOK(t)
	second := send(t, c, "POST", admin, q, vars, nil).mustOK(t)
	if first.cache != "bypass" || second.queries >= first.queries {
		t.Fatalf("statements: %d then %d through the entity cache (cache %q)", first.queries, second.queries, first.cache)
	}
	send(t, c, "POST", admin, `mutation($id: ID!) { updateRole(input: {id: $id, name: "aviators"}) { role { id } } }`,
		map[string]any{"id": role}, nil).mustOK(t)
	if r := send(t, a, "POST", admin, q, vars, nil).mustOK(t); !strings.Contains(r.body, `"aviators"`) {
		t.Fatalf("after renaming the role: %s", r.body)
	}
	send(t, c, "POST", admin, `mutation($id: ID!) { updateUser(input: {id: $id, username: "ada2"}) { user { id } } }`, vars, nil).mustOK(t)
	if r := send(t, a, "POST", admin, q, vars, nil).mustOK(t); !strings.Contains(r.body, `"ada2"`) {
		t.Fatalf("after renaming the user: %s", r.body)
	}
}

// directInstance is a production-like instance (no debug extensions) with
// the response cache, persisted queries, compression and a rate limit of
// points per hour; direct reads how many answers it gave from the cache without
// running GraphQL.
func (b *bundle) directInstance(t testing.TB, store cache.Store, points int) (h http.Handler, direct func() float64) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	rc := cache.NewResponses(store, cache.ResponseConfig{Viewer: server.CacheViewer, RootTags: resolver.RootCacheTags, Metrics: cache.NewMetrics(reg)})
	h = server.New(server.Config{
		PersistedQueries: cache.NewPersistedQueries(store, b.db.PersistedQueries(), time.Hour, nil, log),
		Responses:        rc,
		RateLimit:        ratelimit.New(ratelimit.NewMemory(nil), points, time.Hour, log),
		Compress:         true,
	}, b.cachingResolver(store), b.sessions, b.db, log)
	return h, func() float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "usergraph_cache_direct_answers_total" {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
}

// remaining is the X-RateLimit-Remaining of an answer.
func (s sent) remaining(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(s.header.Get("X-RateLimit-Remaining"))
	if err != nil {
		t.Fatalf("X-RateLimit-Remaining %q: %s", s.header.Get("X-RateLimit-Remaining"), s.body)
	}
	return n
}

// A persisted request answered before is answered again straight from the
// response cache, without running GraphQL, and nobody can tell but by the
// time it takes: the same bytes and headers, changes seen at once, each
// viewer's own answer, variables compared exactly, and the rate limit
// charged once per request.
func TestResponseCache_PersistedRequestsAnsweredDirectly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	log := slog.New(slog.DiscardHandler)
	h, direct := b.directInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), 1_000_000)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, admin2 := b.userWithSession(t, "admin2@example.com", "admin2", "admin")
	ada := b.createUser(t, "ada@example.com", "ada")
	q := `query Users($n: Int!) { users(first: $n) { nodes { username displayName } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}
	n5 := map[string]any{"n": 5}

	registered := send(t, h, "POST", admin, q, n5, ext).mustOK(t)
	full := send(t, h, "POST", admin, "", n5, ext).mustOK(t) // the full path, which the next ones learn from
	if direct() != 0 {
		t.Fatalf("%v answers given directly before any was learned", direct())
	}
	fast := send(t, h, "POST", admin, "", n5, ext).mustOK(t)
	if direct() != 1 {
		t.Fatalf("the repeated request ran GraphQL (%v direct answers)", direct())
	}
	if fast.body != full.body || fast.header.Get("Content-Type") != full.header.Get("Content-Type") {
		t.Fatalf("direct answer differs:\n%s %q\n%s %q", fast.body, fast.header.Get("Content-Type"), full.body, full.header.Get("Content-Type"))
	}
	if cost := registered.remaining(t) - full.remaining(t); cost <= 0 || full.remaining(t)-fast.remaining(t) != cost {
		t.Fatalf("charged %d by the full path and %d directly", cost, full.remaining(t)-fast.remaining(t))
	}
	if r := send(t, h, "POST", admin, "", n5, ext, "Accept", "application/graphql-response+json"); r.header.Get("Content-Type") != "application/graphql-response+json" || r.body != full.body {
		t.Fatalf("with Accept: application/graphql-response+json: %q %s", r.header.Get("Content-Type"), r.body)
	}
	// Another admin shares the answer (the same permissions); an anonymous
	// caller is refused, as ever.
	if r := send(t, h, "POST", admin2, "", n5, ext).mustOK(t); r.body != full.body || direct() != 3 {
		t.Fatalf("another admin: %v direct answers, %s", direct(), r.body)
	}
	if r := send(t, h, "POST", "", "", n5, ext); len(r.errors) == 0 || direct() != 3 {
		t.Fatalf("anonymous caller: %v direct answers, %s", direct(), r.body)
	}

	// A change is seen at once.
	send(t, h, "POST", admin, `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Countess"}) { user { id } } }`, map[string]any{"id": ada}, nil).mustOK(t)
	if r := send(t, h, "POST", admin, "", n5, ext).mustOK(t); !strings.Contains(r.body, "Countess") {
		t.Fatalf("after a rename: %s", r.body)
	}

	// Variables are compared as written: 5.0 is not an Int, whatever 5 has
	// cached; another value is another answer.
	raw := `{"variables":{"n":5.0},"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + cache.QueryHash(q) + `"}}}`
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"errors"`) {
		t.Fatalf("n: 5.0 was answered: %s", rec.Body.String())
	}
	one := send(t, h, "POST", admin, "", map[string]any{"n": 1}, ext).mustOK(t)
	if one.body == full.body || strings.Count(one.body, "username") != 1 {
		t.Fatalf("n: 1 answered %s", one.body)
	}

	// GET: learned the same way, with the HTTP caching headers of the full path.
	g1 := send(t, h, "GET", admin, "", n5, ext).mustOK(t)
	before := direct()
	g2 := send(t, h, "GET", admin, "", n5, ext).mustOK(t)
	if direct() != before+1 || g2.body != g1.body || g2.header.Get("ETag") == "" || g2.header.Get("ETag") != g1.header.Get("ETag") ||
		g2.header.Get("Cache-Control") != g1.header.Get("Cache-Control") {
		t.Fatalf("GET answered directly: %v → %v, headers %v, first %v", before, direct(), g2.header, g1.header)
	}
	if r := send(t, h, "GET", admin, "", n5, ext, "If-None-Match", g1.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match on a direct answer: %d", r.status)
	}
}

// The rate limit applies to direct answers: a request past the budget is
// refused with 429 and RATE_LIMITED, as on the full path.
func TestResponseCache_DirectAnswersAreRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	log := slog.New(slog.DiscardHandler)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	q := `{ roles(first: 3) { nodes { name } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}
	probe, _ := b.directInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), 1_000_000)
	r := send(t, probe, "POST", admin, q, nil, ext).mustOK(t)
	cost := 1_000_000 - r.remaining(t)

	h, direct := b.directInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log), 3*cost)
	send(t, h, "POST", admin, "", nil, ext).mustOK(t) // full path: learned
	send(t, h, "POST", admin, "", nil, ext).mustOK(t) // direct
	if direct() != 1 {
		t.Fatalf("%v direct answers, want 1", direct())
	}
	// The budget is spent: the next request would be direct, and is refused.
	// (The first was registered through the probe instance, whose budget is its own.)
	send(t, h, "POST", admin, "", nil, ext).mustOK(t)
	refused := send(t, h, "POST", admin, "", nil, ext)
	if refused.status != http.StatusTooManyRequests || len(refused.errors) != 1 || refused.errors[0].Extensions["code"] != "RATE_LIMITED" || refused.remaining(t) != 0 {
		t.Fatalf("over budget: %d %s", refused.status, refused.body)
	}
	if direct() != 2 {
		t.Fatalf("%v direct answers, want 2 (the refused request is not one)", direct())
	}
}
