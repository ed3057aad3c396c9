package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

// A registered query is answered from the process once seen, so a hot
// persisted query costs no Redis round trip; an instance that never saw it
// still finds it in the shared store.
func TestPersistedQueries_RegisteredQueriesAreKeptInProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	one := cache.NewPersistedQueries(cache.NewRedis(rdb, cache.RedisConfig{}, quiet()), nil, time.Hour, nil, quiet())
	other := cache.NewPersistedQueries(cache.NewRedis(srv.Client(t), cache.RedisConfig{}, quiet()), nil, time.Hour, nil, quiet())
	const hash, query = "9e1a6e3f", "{ me { id } }"

	one.Add(ctx, hash, query)
	if q, ok := other.Get(ctx, hash); !ok || q != query {
		t.Fatalf("another instance: Get = %q, %t; want the registered query from the shared store", q, ok)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*cache.PersistedQueries{"the registering instance": one, "an instance that read it": other} {
		if q, ok := p.Get(ctx, hash); !ok || q != query {
			t.Errorf("%s after the store lost it: Get = %q, %t; want the query from the process", name, q, ok)
		}
	}
	fresh := cache.NewPersistedQueries(cache.NewRedis(srv.Client(t), cache.RedisConfig{}, quiet()), nil, time.Hour, nil, quiet())
	if _, ok := fresh.Get(ctx, hash); ok {
		t.Error("an instance that never saw the hash found it after the store lost it")
	}
}
