package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

// A value a lagging replica served after the change's invalidation is
// stored (nothing can tell it apart yet), and the second invalidation,
// one lag later, removes it.
func TestAfterReplicaLag_RemovesAStaleFillOneLagLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const lag = 200 * time.Millisecond
	s := cache.AfterReplicaLag(cache.NewMemory(0), lag)
	if err := s.Invalidate(ctx, "User:1"); err != nil { // the change commits
		t.Fatal(err)
	}
	_, seq, err := s.GetMany(ctx, nil) // a reader starts, on a replica still behind
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "user:1", []byte("old name"), time.Minute, []string{"User:1"}, seq); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ctx, "user:1"); !ok {
		t.Fatal("the fill was refused: the test no longer shows the window it is about")
	}
	deadline := time.Now().Add(5 * lag)
	for {
		if _, ok, _ := s.Get(ctx, "user:1"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stale entry outlived the lag (%s) by far", lag)
		}
		time.Sleep(20 * time.Millisecond) // waiting for the timer under test
	}
}

func TestAfterReplicaLag_ZeroLagIsTheStoreItself(t *testing.T) {
	t.Parallel()
	m := cache.NewMemory(0)
	if got := cache.AfterReplicaLag(m, 0); got != cache.Store(m) {
		t.Fatal("a zero lag wrapped the store")
	}
}

// Marks are shared by every instance on one Redis, expire after the window,
// and a Redis that cannot answer sends reads to the primary.
func TestWriteMarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const window = 300 * time.Millisecond
	srv := redistest.Start(t)
	forms := map[string]func() (mark, check *cache.WriteMarks){
		"memory": func() (*cache.WriteMarks, *cache.WriteMarks) {
			m := cache.NewMemoryWriteMarks(window)
			return m, m
		},
		"redis, two instances": func() (*cache.WriteMarks, *cache.WriteMarks) {
			return cache.NewRedisWriteMarks(srv.Client(t), window, time.Second),
				cache.NewRedisWriteMarks(srv.Client(t), window, time.Second)
		},
	}
	for name, newMarks := range forms {
		t.Run(name, func(t *testing.T) {
			mark, check := newMarks()
			id := name + "-user"
			if check.Marked(ctx, "u:"+id) {
				t.Fatal("marked before any write")
			}
			mark.Mark(ctx, "u:"+id)
			if !check.Marked(ctx, "a:192.0.2.1", "u:"+id) {
				t.Fatal("not marked right after a write")
			}
			if check.Marked(ctx, "u:someone-else") {
				t.Fatal("another client is marked")
			}
			time.Sleep(window + 100*time.Millisecond) // letting the window pass
			if check.Marked(ctx, "u:"+id) {
				t.Fatal("still marked after the window")
			}
		})
	}
	t.Run("redis down", func(t *testing.T) {
		down := redistest.Start(t)
		marks := cache.NewRedisWriteMarks(down.Client(t), window, 100*time.Millisecond)
		down.Stop()
		if !marks.Marked(ctx, "u:anyone") {
			t.Fatal("with Redis down a client is not sent to the primary")
		}
	})
}
