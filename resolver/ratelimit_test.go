package resolver_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// limitedInstance is an instance charging budgets of points in store.
func (b *bundle) limitedInstance(t *testing.T, store ratelimit.Store, points int) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	res := resolver.New(b.db, resolver.Services{Sessions: b.sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log)}, resolver.Config{})
	return server.New(server.Config{RateLimit: ratelimit.New(store, points, time.Hour, log)}, res, b.sessions, b.db, log)
}

func postAs(t *testing.T, h http.Handler, token, ip, query string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body(query)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.RemoteAddr = ip + ":1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Each operation is charged its complexity (a point per hundred, at least
// one) against the caller's budget, shared by every instance through
// Redis; past the budget, operations are refused with 429 until the window
// ends, and a cheaper one that fits still runs. Budgets are per user, or
// per address when anonymous.
func TestRateLimit_CostBasedBudgetsAcrossInstances(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	a := b.limitedInstance(t, ratelimit.NewRedis(rs.Client(t), 100*time.Millisecond), 10)
	c := b.limitedInstance(t, ratelimit.NewRedis(rs.Client(t), 100*time.Millisecond), 10)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	_, member := b.userWithSession(t, "member@example.com", "member", "member")

	cheap := `{ rateLimit { cost limit remaining resetAt } }`
	r := postAs(t, a, admin, "10.0.0.1", cheap)
	if r.Code != 200 || r.Header().Get("X-RateLimit-Limit") != "10" || r.Header().Get("X-RateLimit-Remaining") != "9" ||
		!strings.Contains(r.Body.String(), `"cost":1,"limit":10,"remaining":9`) {
		t.Fatalf("a cheap query: %d %v %s", r.Code, r.Header(), r.Body.String())
	}
	// users(first: 100) with three fields costs 100 x 4 + 1 = 401: 5 points.
	costly := `{ users(first: 100) { nodes { id username displayName } } }`
	if r := postAs(t, c, admin, "10.0.0.1", costly); r.Code != 200 || r.Header().Get("X-RateLimit-Remaining") != "4" {
		t.Fatalf("a costly query through the other instance: %d %v %s", r.Code, r.Header(), r.Body.String())
	}
	r = postAs(t, a, admin, "10.0.0.1", costly)
	if r.Code != http.StatusTooManyRequests || codeOf(t, r) != "RATE_LIMITED" || r.Header().Get("Retry-After") == "" {
		t.Fatalf("over the budget: %d %v %s", r.Code, r.Header(), r.Body.String())
	}
	if r := postAs(t, a, admin, "10.0.0.1", cheap); r.Code != 200 || r.Header().Get("X-RateLimit-Remaining") != "3" {
		t.Fatalf("a refused operation must not use the budget: %d %v", r.Code, r.Header())
	}
	// Another user, and anonymous callers per address, have their own.
	if r := postAs(t, a, member, "10.0.0.1", cheap); r.Header().Get("X-RateLimit-Remaining") != "9" {
		t.Fatalf("another user's budget: %v", r.Header())
	}
	for i, ip := range []string{"10.0.0.2", "10.0.0.2", "10.0.0.3"} {
		want := map[int]string{0: "9", 1: "8", 2: "9"}[i]
		if r := postAs(t, a, "", ip, cheap); r.Header().Get("X-RateLimit-Remaining") != want {
			t.Fatalf("anonymous %s: remaining %s, want %s", ip, r.Header().Get("X-RateLimit-Remaining"), want)
		}
	}
	reset, _ := strconv.ParseInt(r.Header().Get("X-RateLimit-Reset"), 10, 64)
	if d := time.Until(time.Unix(reset, 0)); d < 50*time.Minute || d > 61*time.Minute {
		t.Errorf("the window resets in %s, want about an hour", d)
	}

	// Redis gone: requests pass uncharged rather than fail.
	rs.Stop()
	if r := postAs(t, a, admin, "10.0.0.1", costly); r.Code != 200 || codeOf(t, r) != "" {
		t.Fatalf("with Redis down: %d %s", r.Code, r.Body.String())
	}
}
