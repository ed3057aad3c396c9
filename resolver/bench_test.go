package resolver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/seed"
)

// BenchmarkQueries measures in-process latency of the nested queries the
// dataloaders exist for, at several batch windows, and reports SQL
// statements per operation. Run with `make bench`.
//
// Figures from this machine belong in the README; they are never asserted.
func BenchmarkQueries(b *testing.B) {
	queries := []struct{ name, query string }{
		{"Q1_users50", `{ users(first: 50) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`},
		{"Q2_roles_groups", `{ users(first: 50) { nodes { id email roles { name } groups(first: 5) { nodes { name } } } } }`},
		{"Q3_memberCount", `{ users(first: 50) { nodes { id email roles { name } groups(first: 5) { nodes { name memberCount } } } } }`},
		{"node_lookup_roles", `query($id: ID!) { node(id: $id) { ... on User { email roles { name } groups(first: 5) { nodes { name } } } } }`},
	}
	for _, wait := range []time.Duration{100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		bn := setupBench(b, wait)
		for _, q := range queries {
			b.Run(fmt.Sprintf("%s/wait=%s", q.name, wait), func(b *testing.B) {
				vars := map[string]any{"id": bn.someUser}
				var stmts int
				for b.Loop() {
					r := bn.do(b, q.query, vars)
					if len(r.Errors) > 0 {
						b.Fatalf("errors: %s", r.Raw)
					}
					stmts = int(r.Extensions["sqlStatements"].(float64))
				}
				b.ReportMetric(float64(stmts), "stmts/op")
			})
		}
	}
}

type benchBundle struct {
	*bundle
	someUser string
}

func setupBench(b *testing.B, wait time.Duration) benchBundle {
	b.Helper()
	bn := setupTB(b, setupOpts{loaderWait: wait})
	if _, err := seed.Run(context.Background(), bn.db.Pool, seed.Options{Users: 2000, Groups: 50}); err != nil {
		b.Fatal(err)
	}
	var out struct {
		Users struct{ Nodes []struct{ ID string } }
	}
	r := bn.do(b, `{ users(first: 1) { nodes { id } } }`, nil)
	if err := jsonUnmarshal(r.Data, &out); err != nil || len(out.Users.Nodes) == 0 {
		b.Fatalf("no user: %v %s", err, r.Raw)
	}
	return benchBundle{bundle: bn, someUser: out.Users.Nodes[0].ID}
}

// BenchmarkEnumeration times the answers an outsider could compare to learn
// whether an account exists: each pair should cost the same (within a few
// ms). Compare the pairs' ns/op; nothing is asserted here.
func BenchmarkEnumeration(b *testing.B) {
	bn := setupTB(b)
	bn.doAs(b, "", `mutation { register(input: {email: "ada@example.com", username: "ada", password: "correct horse battery"}) { accepted } }`, nil)
	n := 0
	cases := []struct {
		name  string
		query func() (string, map[string]any)
	}{
		{"login/unknown-account", func() (string, map[string]any) {
			return `mutation { login(input: {identifier: "nobody@example.com", password: "wrong horse battery"}) { token } }`, nil
		}},
		{"login/wrong-password", func() (string, map[string]any) {
			return `mutation { login(input: {identifier: "ada@example.com", password: "wrong horse battery"}) { token } }`, nil
		}},
		{"register/new-address", func() (string, map[string]any) {
			n++
			return `mutation($e: String!, $u: String!) { register(input: {email: $e, username: $u, password: "correct horse battery"}) { accepted } }`,
				map[string]any{"e": fmt.Sprintf("new%d@example.com", n), "u": fmt.Sprintf("new%d", n)}
		}},
		{"register/taken-address", func() (string, map[string]any) {
			n++
			return `mutation($e: String!, $u: String!) { register(input: {email: $e, username: $u, password: "correct horse battery"}) { accepted } }`,
				map[string]any{"e": "ada@example.com", "u": fmt.Sprintf("taken%d", n)}
		}},
		{"reset/known-address", func() (string, map[string]any) {
			return `mutation { requestPasswordReset(input: {email: "ada@example.com"}) { ok } }`, nil
		}},
		{"reset/unknown-address", func() (string, map[string]any) {
			return `mutation { requestPasswordReset(input: {email: "nobody@example.com"}) { ok } }`, nil
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				// Every request from its own address: the per-address limit
				// is not what is measured.
				bn.throttleClock.Advance(time.Hour)
				q, v := c.query()
				bn.doAs(b, "", q, v)
			}
		})
	}
}

// BenchmarkCaching compares one query (Q2: 50 users with their roles and
// first five groups) through real Redis: uncached; as an automatic
// persisted query (hash only) with the entity cache; and with the response
// cache warm. Run with `make bench`.
func BenchmarkCaching(b *testing.B) {
	bn := setupBench(b, time.Millisecond)
	rs := redistest.Start(b)
	log := slog.New(slog.DiscardHandler)
	_, admin := bn.userWithSession(b, "bench-admin@example.com", "bench-admin", "admin")
	q := `query Q2 { users(first: 50) { nodes { id username roles { name } groups(first: 5) { nodes { name } } } } }`
	hash := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}
	uncached := bn.instanceWith(b, nil, false, false)
	apq := bn.instanceWith(b, cache.NewRedis(rs.Client(b), cache.RedisConfig{}, log), false, false)
	full := bn.instanceWith(b, cache.NewRedis(rs.Client(b), cache.RedisConfig{}, log), false, true)
	send(b, apq, "POST", admin, q, nil, hash).mustOK(b) // register the hash
	for _, m := range []struct {
		name  string
		h     http.Handler
		query string
		ext   map[string]any
	}{
		{"uncached", uncached, q, nil},
		{"apq_entity_cache", apq, "", hash},
		{"response_cached", full, "", hash},
	} {
		b.Run(m.name, func(b *testing.B) {
			var stmts int
			for b.Loop() {
				stmts = send(b, m.h, "POST", admin, m.query, nil, m.ext).mustOK(b).queries
			}
			b.ReportMetric(float64(stmts), "stmts/op")
		})
	}
}
