//go:build linux

package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/uuid"

	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/model"
	"github.com/usergraph/usergraph/server"
)

// floorQuery answers users(...) from a page built once, so that what is
// measured is gqlgen's execution of the generated schema alone: no SQL, no
// loaders, no extensions.
type floorQuery struct {
	graph.QueryResolver
	page *model.UserConnection
}

func (q floorQuery) Users(context.Context, *int, *string, *int, *string, *graph.UserFilter, *graph.UserOrder) (*model.UserConnection, error) {
	return q.page, nil
}

// floorUser answers roles and groups from memory: two roles and two or
// three groups a user, about the seed's averages.
type floorUser struct {
	graph.UserResolver
	roles  []model.Role
	groups [2]*model.UserGroupConnection
}

func (u floorUser) Roles(context.Context, *model.User) ([]model.Role, error) { return u.roles, nil }

func (u floorUser) Groups(_ context.Context, obj *model.User, _ *int, _ *string, _ *int, _ *string, _ *graph.GroupOrder) (*model.UserGroupConnection, error) {
	return u.groups[obj.ID[0]%2], nil
}

type floorRoot struct {
	graph.ResolverRoot
	q floorQuery
	u floorUser
}

func (r floorRoot) Query() graph.QueryResolver { return r.q }
func (r floorRoot) User() graph.UserResolver   { return r.u }

// BenchmarkExecutorFloor is the floor under Q1 and Q2 of `make bench`: the
// CPU gqlgen itself spends executing and writing their 50-user pages, with
// the data already in memory: no SQL, no loaders, no extensions. Issue 8
// asks Q1 to cost at most 0.4 CPU-ms and Q2 1.0 in all (server and
// PostgreSQL); compare these figures with that. interceptors=2 adds two
// pass-through field interceptors, the number the server installs;
// reserved parks deep stacks as usergraph serve does (server.ReserveStacks).
//
//	go test -run '^$' -bench ExecutorFloor -benchmem ./graph/
func BenchmarkExecutorFloor(b *testing.B) {
	root := floorRoot{q: floorQuery{page: &model.UserConnection{PageInfo: &model.PageInfo{HasNextPage: true}}}}
	now := time.Now()
	for i := range 50 {
		u := &model.User{ID: uuid.New(), Email: fmt.Sprintf("user%d@example.com", i), Username: fmt.Sprintf("user%d", i), CreatedAt: now, UpdatedAt: now}
		root.q.page.Edges = append(root.q.page.Edges, &model.UserEdge{Cursor: fmt.Sprintf("cursor-%036d", i), Node: u})
	}
	end := root.q.page.Edges[49].Cursor
	root.q.page.PageInfo.EndCursor = &end
	root.u.roles = []model.Role{{ID: uuid.New(), Name: "editor"}, {ID: uuid.New(), Name: "viewer"}}
	for i := range root.u.groups {
		c := &model.UserGroupConnection{PageInfo: &model.PageInfo{}}
		for j := range 2 + i {
			c.Edges = append(c.Edges, &model.UserGroupEdge{Cursor: fmt.Sprintf("g%d", j), Node: &model.Group{ID: uuid.New(), Name: fmt.Sprintf("group-%d", j)}})
		}
		root.u.groups[i] = c
	}
	directives := graph.DirectiveRoot{
		SelfOrPermission: func(ctx context.Context, obj any, next graphql.Resolver, permission string) (any, error) {
			return next(ctx)
		},
		HasPermission: func(ctx context.Context, obj any, next graphql.Resolver, permission string) (any, error) {
			return next(ctx)
		},
	}
	queries := []struct{ name, query, check string }{
		{"Q1", `{ users(first: 50) { edges { cursor node { id email username } } pageInfo { hasNextPage endCursor } } }`, `"hasNextPage":true`},
		{"Q2", `{ users(first: 50) { nodes { id email username roles { name } groups(first: 5) { nodes { name } } } } }`, `"name":"group-2"`},
	}
	variants := []struct {
		name         string
		interceptors int
		reserve      bool
	}{
		{"interceptors=0", 0, false},
		{"interceptors=2", 2, false},
		{"reserved", 0, true}, // as usergraph serve runs
	}
	for _, q := range queries {
		for _, v := range variants {
			b.Run(q.name+"/"+v.name, func(b *testing.B) {
				if v.reserve {
					release := server.ReserveStacks(server.DefaultStackReserve)
					runtime.GC() // the starting stack size is set at each collection
					runtime.GC()
					defer func() {
						release()
						runtime.GC()
						runtime.GC()
					}()
				}
				srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: root, Directives: directives}))
				srv.AddTransport(transport.POST{})
				for range v.interceptors {
					srv.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) { return next(ctx) })
				}
				body, err := json.Marshal(map[string]string{"query": q.query})
				if err != nil {
					b.Fatal(err)
				}
				runFloor(b, srv, body, []byte(q.check))
			})
		}
	}
}

func runFloor(b *testing.B, srv *handler.Server, body, check []byte) {
	b.Helper()
	// As under load: many requests at once, so the per-element goroutines
	// find busy processors instead of waking idle ones.
	b.SetParallelism(16)
	var bad atomic.Pointer[string]
	cpu0 := selfCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if !bytes.Contains(rec.Body.Bytes(), check) {
				s := rec.Body.String()
				bad.Store(&s)
			}
		}
	})
	cpu := selfCPU() - cpu0
	if s := bad.Load(); s != nil {
		b.Fatalf("bad answer: %s", *s)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
