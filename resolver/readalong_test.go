package resolver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/server"
)

// roundTrips counts a Redis client's round trips: commands and pipelines.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// With sessions and answers in one Redis, as in production, a repeated
// persisted request takes one round trip: its answer's digest is read along
// the session check, under the key of whom the token was last time, and
// the answer with that digest is kept in process. Only the digest crosses
// from Redis, and a change made through another instance is answered at
// once. Whoever the session turns out to be now is what counts: a viewer
// who lost a permission meanwhile gets the answer for what they are now,
// not the answer read along.
func TestResponseCache_DirectAnswersShareTheSessionRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	trips := &roundTrips{}
	log := slog.New(slog.DiscardHandler)
	instance := func() http.Handler {
		client, reads := rs.Client(t), rs.Reads(t, 5*time.Second)
		client.AddHook(trips)
		reads.AddHook(trips)
		store := cache.NewRedis(client, cache.RedisConfig{Reads: reads}, log)
		sessions := auth.NewSessions(b.db, auth.NewRedisCache(client, reads, 0, log), auth.SessionConfig{}, nil, log)
		res := resolver.New(b.db, resolver.Services{Sessions: sessions, Hasher: b.hasher,
			Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log), Cache: store},
			resolver.Config{LoaderWait: time.Millisecond})
		return server.New(server.Config{
			PersistedQueries: cache.NewPersistedQueries(store, b.db.PersistedQueries(), time.Hour, nil, log),
			Responses:        cache.NewResponses(store, cache.ResponseConfig{Viewer: server.CacheViewer, RootTags: resolver.RootCacheTags}),
		}, res, sessions, b.db, log)
	}
	h, other := instance(), instance()
	_, op := b.userWithSession(t, "op@example.com", "op", "admin")
	eveID, eve := b.userWithSession(t, "eve@example.com", "eve", "")
	role := send(t, h, "POST", op, `mutation { createRole(input: {name: "reader", permissions: ["users:read"]}) { role { id } } }`, nil, nil).mustOK(t)
	readerID := role.data["createRole"].(map[string]any)["role"].(map[string]any)["id"].(string)
	send(t, h, "POST", op, `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { user { id } } }`,
		map[string]any{"u": eveID, "r": readerID}, nil).mustOK(t)
	for i := range 20 {
		b.createUser(t, fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("user%d", i))
	}
	q := `query Users { users(first: 20) { nodes { id username email displayName createdAt } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}

	send(t, h, "POST", eve, q, nil, ext).mustOK(t)
	full := send(t, h, "POST", eve, "", nil, ext).mustOK(t) // learned
	send(t, h, "POST", eve, "", nil, ext).mustOK(t)         // answered directly; eve's viewer and the answer kept
	var direct sent
	before := trips.n.Load()
	bytes := redisSent(t, rs, func() { direct = send(t, h, "POST", eve, "", nil, ext).mustOK(t) })
	if n := trips.n.Load() - before; n != 1 || direct.body != full.body {
		t.Fatalf("a repeated request took %d round trips to Redis (want 1) and answered %s (want %s)", n, direct.body, full.body)
	}
	t.Logf("Redis sent %d bytes for a direct answer of %d", bytes, len(full.body))
	// The round trip carried the session and a digest, not the answer.
	if bytes >= int64(len(full.body))/2 {
		t.Fatalf("Redis sent %d bytes for a direct answer of %d", bytes, len(full.body))
	}

	// A rename through the other instance is answered at once.
	send(t, other, "POST", op, `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Eve Renamed"}) { user { id } } }`,
		map[string]any{"id": eveID}, nil).mustOK(t)
	for range 3 { // the full path, the direct answer read whole, the direct answer kept
		if r := send(t, h, "POST", eve, "", nil, ext).mustOK(t); !strings.Contains(r.body, "Eve Renamed") {
			t.Fatalf("after a rename through another instance: %s", r.body)
		}
	}

	// The reader role loses users:read. The answer eve's token read along
	// stays cached (it names no role) for whoever still may read users,
	// but eve no longer may.
	send(t, h, "POST", op, `mutation($r: ID!) { updateRole(input: {id: $r, permissions: []}) { role { id } } }`,
		map[string]any{"r": readerID}, nil).mustOK(t)
	after := send(t, h, "POST", eve, "", nil, ext)
	if len(after.errors) == 0 || after.errors[0].Extensions["code"] != "FORBIDDEN" || strings.Contains(after.body, "Eve Renamed") {
		t.Fatalf("eve, no longer allowed to read users, was answered %s", after.body)
	}
}

// redisSent is how many bytes the Redis server sent its clients while fn
// ran: the growth of its total_net_output_bytes, less that of the INFO
// replies that read it (measured with nothing in between).
func redisSent(t *testing.T, rs *redistest.Server, fn func()) int64 {
	t.Helper()
	client := rs.Client(t)
	total := func() int64 {
		info, err := client.Info(context.Background(), "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no total_net_output_bytes in %q", info)
		return 0
	}
	t0 := total()
	t1 := total()
	fn()
	t2 := total()
	return (t2 - t1) - (t1 - t0)
}
