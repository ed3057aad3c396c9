package resolver_test

import (
	"context"
	"log/slog"
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
// persisted request takes one round trip: its answer is read along the
// session check, under the key of whom the token was last time. Whoever the
// session turns out to be now is what counts: a viewer who lost a
// permission meanwhile gets the answer for what they are now, not the
// answer read along.
func TestResponseCache_DirectAnswersShareTheSessionRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rs := redistest.Start(t)
	client, reads := rs.Client(t), rs.Reads(t, 5*time.Second)
	trips := &roundTrips{}
	client.AddHook(trips)
	reads.AddHook(trips)
	log := slog.New(slog.DiscardHandler)
	store := cache.NewRedis(client, cache.RedisConfig{Reads: reads}, log)
	sessions := auth.NewSessions(b.db, auth.NewRedisCache(client, reads, 0, log), auth.SessionConfig{}, nil, log)
	res := resolver.New(b.db, resolver.Services{Sessions: sessions, Hasher: b.hasher,
		Throttle: auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{}, nil, log), Cache: store},
		resolver.Config{LoaderWait: time.Millisecond})
	h := server.New(server.Config{
		PersistedQueries: cache.NewPersistedQueries(store, b.db.PersistedQueries(), time.Hour, nil, log),
		Responses:        cache.NewResponses(store, cache.ResponseConfig{Viewer: server.CacheViewer, RootTags: resolver.RootCacheTags}),
	}, res, sessions, b.db, log)
	_, op := b.userWithSession(t, "op@example.com", "op", "admin")
	eveID, eve := b.userWithSession(t, "eve@example.com", "eve", "")
	role := send(t, h, "POST", op, `mutation { createRole(input: {name: "reader", permissions: ["users:read"]}) { role { id } } }`, nil, nil).mustOK(t)
	readerID := role.data["createRole"].(map[string]any)["role"].(map[string]any)["id"].(string)
	send(t, h, "POST", op, `mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r}) { user { id } } }`,
		map[string]any{"u": eveID, "r": readerID}, nil).mustOK(t)
	q := `query Users { users(first: 5) { nodes { username } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}

	send(t, h, "POST", eve, q, nil, ext).mustOK(t)
	full := send(t, h, "POST", eve, "", nil, ext).mustOK(t) // learned
	send(t, h, "POST", eve, "", nil, ext).mustOK(t)         // answered directly; eve's viewer remembered
	before := trips.n.Load()
	direct := send(t, h, "POST", eve, "", nil, ext).mustOK(t)
	if n := trips.n.Load() - before; n != 1 || direct.body != full.body {
		t.Fatalf("a repeated request took %d round trips to Redis (want 1) and answered %s (want %s)", n, direct.body, full.body)
	}

	// The reader role loses users:read. The answer eve's token read along
	// stays cached (it names no role) for whoever still may read users,
	// but eve no longer may.
	send(t, h, "POST", op, `mutation($r: ID!) { updateRole(input: {id: $r, permissions: []}) { role { id } } }`,
		map[string]any{"r": readerID}, nil).mustOK(t)
	after := send(t, h, "POST", eve, "", nil, ext)
	if len(after.errors) == 0 || after.errors[0].Extensions["code"] != "FORBIDDEN" || after.body == full.body {
		t.Fatalf("eve, no longer allowed to read users, was answered %s", after.body)
	}
}
