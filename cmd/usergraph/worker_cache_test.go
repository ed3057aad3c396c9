package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

// A worker of its own (`usergraph worker`) runs imports and purges; what
// they change must leave the API's caches at once, memory copies included.
func TestWorkerCache_JobsInvalidateTheAPIsCachesAndCopies(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	// An API instance keeping copies, with a cached response tagged with
	// the user list and its digest read along with a session check.
	api := cache.NewRedis(rs.Client(t), cache.RedisConfig{}, log)
	sessions := auth.NewRedisCache(rs.Client(t), nil, 5*time.Second, log).UseCoherence(rs.Coherence(t), true)
	if err := api.Set(ctx, "answer", []byte(`{"data":{}}`), time.Minute, []string{"users"}, 0); err != nil {
		t.Fatal(err)
	}
	along := &auth.ReadAlong{Keys: []string{"ug:d:answer"}}
	for range 2 { // the second from the copy
		sessions.Get(auth.WithReadAlong(ctx, along), "sess:x")
	}
	if along.Vals[0] == nil {
		t.Fatal("the cached answer's digest was not read along")
	}

	invalidator, closeCache, err := workerCache(ctx, rs.URL, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeCache()
	if err := invalidator.Invalidate(ctx, "users"); err != nil {
		t.Fatal(err)
	}

	if _, ok, _ := api.Get(ctx, "answer"); ok {
		t.Error("a response cached under users survived the worker's invalidation")
	}
	sessions.Get(auth.WithReadAlong(ctx, along), "sess:x")
	if along.Vals[0] != nil {
		t.Error("the API instance still reads the invalidated answer's digest from its copy")
	}
}
