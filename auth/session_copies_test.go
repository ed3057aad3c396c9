package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

// copyingInstance is one API instance's session cache keeping copies, and
// a count of its reads of Redis.
func copyingInstance(t *testing.T, rs *redistest.Server) (*auth.RedisCache, *redistest.Commands) {
	t.Helper()
	client := rs.Client(t)
	counted := redistest.CountCommands(client, "mget")
	return auth.NewRedisCache(client, nil, 5*time.Second, slog.New(slog.DiscardHandler)).UseCoherence(rs.Coherence(t), true), counted
}

func TestRedisCache_CopiesAnswerRepeatedChecksAndNeverOutliveAChange(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	a, _ := copyingInstance(t, rs)
	b, bReads := copyingInstance(t, rs)
	now := time.Now()
	entry := auth.CachedSession{Viewer: auth.Viewer{UserID: uuid.New(), SessionID: uuid.New()},
		ExpiresAt: now.Add(time.Hour), LastSeenAt: now}

	// A repeated check is answered from memory.
	a.Set(ctx, "sess:1", entry, time.Minute)
	for range 3 {
		if _, ok, gen := b.Get(ctx, "sess:1"); !ok || gen != 0 {
			t.Fatalf("Get = %v, generation %d; want the entry, generation 0", ok, gen)
		}
	}
	if n := bReads.Count(); n != 1 {
		t.Errorf("three checks of one session took %d reads of Redis, want 1", n)
	}

	// A revocation through another instance holds at once.
	a.Delete(ctx, "sess:1")
	if _, ok, _ := b.Get(ctx, "sess:1"); ok {
		t.Error("a session revoked through another instance is still accepted from memory")
	}

	// So does a permission change.
	a.Set(ctx, "sess:1", entry, time.Minute)
	b.Get(ctx, "sess:1")
	b.Get(ctx, "sess:1")
	a.BumpGeneration(ctx)
	if _, _, gen := b.Get(ctx, "sess:1"); gen != 1 {
		t.Errorf("after a permission change through another instance the generation is %d, want 1", gen)
	}

	// And a change to a key read along (a cached answer's digest), once
	// its writer (the response cache, on any instance) announces it.
	writer := rs.Coherence(t)
	along := &auth.ReadAlong{Keys: []string{"ug:d:answer"}}
	admin := rs.Client(t)
	if err := admin.Set(ctx, "ug:d:answer", "old", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		b.Get(auth.WithReadAlong(ctx, along), "sess:1")
	}
	wroteAt := time.Now()
	if err := admin.Set(ctx, "ug:d:answer", "new", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cache.AwaitInvalidation(ctx, writer, wroteAt); err != nil {
		t.Fatal(err)
	}
	b.Get(auth.WithReadAlong(ctx, along), "sess:1")
	if got := string(along.Vals[0]); got != "new" {
		t.Errorf("read along after another instance's invalidation: %q, want %q", got, "new")
	}
}

func TestRedisCache_ACopyAnswersForAtMostItsLifetime(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	b, bReads := copyingInstance(t, rs)
	now := time.Now()
	b.Set(ctx, "sess:1", auth.CachedSession{ExpiresAt: now.Add(time.Hour), LastSeenAt: now}, time.Minute)
	b.Get(ctx, "sess:1")
	time.Sleep(cache.CopyLifetime + 100*time.Millisecond)
	b.Get(ctx, "sess:1")
	if n := bReads.Count(); n != 2 {
		t.Errorf("a check after the copy's lifetime took %d reads in all, want 2", n)
	}
}

func TestRedisCache_AnInstanceKeepingNoCopiesStillAnnouncesItsChanges(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	coherence := rs.Coherence(t)
	plainClient := rs.Client(t)
	plain := redistest.CountCommands(plainClient, "mget")
	a := auth.NewRedisCache(plainClient, nil, 5*time.Second, slog.New(slog.DiscardHandler)).UseCoherence(coherence, false)
	b, _ := copyingInstance(t, rs)
	now := time.Now()
	entry := auth.CachedSession{ExpiresAt: now.Add(time.Hour), LastSeenAt: now}

	a.Set(ctx, "sess:1", entry, time.Minute)
	a.Get(ctx, "sess:1")
	a.Get(ctx, "sess:1")
	if n := plain.Count(); n != 2 {
		t.Errorf("an instance keeping no copies read Redis %d times for two checks, want 2", n)
	}
	b.Get(ctx, "sess:1")
	a.Delete(ctx, "sess:1")
	if _, ok, _ := b.Get(ctx, "sess:1"); ok {
		t.Error("a revocation through an instance keeping no copies did not reach another's copies")
	}
}
