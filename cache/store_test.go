package cache_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The same specification holds for the in-process store and Redis.
func TestStore_Specification(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) cache.Store{
		"memory": func(*testing.T) cache.Store { return cache.NewMemory(0) },
		"redis": func(t *testing.T) cache.Store {
			return cache.NewRedis(redistest.Start(t).Client(t), cache.RedisConfig{}, quiet())
		},
		"redis with pipelined reads": func(t *testing.T) cache.Store {
			rs := redistest.Start(t)
			return cache.NewRedis(rs.Client(t), cache.RedisConfig{Reads: rs.Reads(t, 5*time.Second)}, quiet())
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			get := func(key string) string {
				t.Helper()
				v, ok, err := s.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					return "<miss>"
				}
				return string(v)
			}
			_, seq, err := s.GetMany(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.Set(ctx, "a", []byte("A"), time.Minute, []string{"User:1", "users"}, seq))
			must(s.Set(ctx, "b", []byte("B"), time.Minute, []string{"User:2"}, seq))
			must(s.Set(ctx, "short", []byte("S"), 50*time.Millisecond, nil, seq))
			if get("a") != "A" || get("b") != "B" {
				t.Fatalf("after Set: a=%s b=%s", get("a"), get("b"))
			}
			time.Sleep(120 * time.Millisecond) // letting a 50ms TTL pass
			if get("short") != "<miss>" {
				t.Error("an entry outlived its TTL")
			}

			// Invalidating a tag removes exactly the entries recorded under it.
			must(s.Invalidate(ctx, "users"))
			if get("a") != "<miss>" || get("b") != "B" {
				t.Fatalf("after invalidating users: a=%s b=%s", get("a"), get("b"))
			}

			// A value computed before an invalidation of one of its tags is
			// not stored: it may hold what the change replaced.
			_, before, _ := s.GetMany(ctx, nil)
			must(s.Invalidate(ctx, "User:2"))
			must(s.Set(ctx, "stale", []byte("old"), time.Minute, []string{"User:2"}, before))
			if get("stale") != "<miss>" {
				t.Error("a value computed before its tag's invalidation was stored")
			}
			// Other tags are unaffected by that invalidation.
			must(s.Set(ctx, "fresh", []byte("ok"), time.Minute, []string{"User:3"}, before))
			if get("fresh") != "ok" {
				t.Error("a value with untouched tags was refused")
			}

			// Many at once, with the same rules.
			vals, seq2, err := s.GetMany(ctx, []string{"b", "nope", "fresh"})
			if err != nil || vals[0] != nil || vals[1] != nil || string(vals[2]) != "ok" {
				t.Fatalf("GetMany: %q %v", vals, err)
			}
			must(s.Invalidate(ctx, "User:9"))
			must(s.SetMany(ctx, []cache.Entry{{Key: "m1", Val: []byte("1"), TTL: time.Minute, Tags: []string{"User:8"}},
				{Key: "m2", Val: []byte("2"), TTL: time.Minute, Tags: []string{"User:9"}}}, seq2))
			if get("m1") != "1" || get("m2") != "<miss>" {
				t.Errorf("SetMany: m1=%s m2=%s, want m2 refused (its tag changed after the read)", get("m1"), get("m2"))
			}
		})
	}
}

// Two instances on one Redis: an invalidation through one removes the
// entry the other reads.
func TestRedis_InvalidationReachesEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	a := cache.NewRedis(srv.Client(t), cache.RedisConfig{}, quiet())
	b := cache.NewRedis(srv.Client(t), cache.RedisConfig{}, quiet())
	_, seq, _ := a.GetMany(ctx, nil)
	if err := a.Set(ctx, "k", []byte("v"), time.Minute, []string{"Group:9"}, seq); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Get(ctx, "k"); !ok {
		t.Fatal("instance b does not see instance a's entry")
	}
	if err := b.Invalidate(ctx, "Group:9"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Get(ctx, "k"); ok {
		t.Fatal("instance a still reads the entry b invalidated")
	}
}

// A dead Redis costs a bounded time per call until the breaker opens, then
// nothing; when Redis returns, the cache works again.
func TestRedis_DownThenBackBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	var states []string
	s := cache.NewRedis(srv.Client(t), cache.RedisConfig{OpenFor: 500 * time.Millisecond,
		OnStateChange: func(st string) { states = append(states, st) }}, quiet())
	srv.Stop()
	for range 3 {
		start := time.Now()
		if _, _, err := s.Get(ctx, "k"); err == nil {
			t.Fatal("a read from a stopped Redis succeeded")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a failing call took %s", d)
		}
	}
	if s.BreakerState() != "open" {
		t.Fatalf("breaker %s after three failures, want open", s.BreakerState())
	}
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("with the breaker open: %v, want ErrUnavailable", err)
	}
	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, seq, err := s.GetMany(ctx, nil)
		if err == nil {
			if err := s.Set(ctx, "k", []byte("v"), time.Minute, nil, seq); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache did not come back: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the breaker's open period
	}
	if v, ok, err := s.Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("after recovery: %q %v %v", v, ok, err)
	}
	if s.BreakerState() != "closed" || len(states) < 3 {
		t.Errorf("breaker %s, transitions %v", s.BreakerState(), states)
	}
}

// An invalidation that cannot reach a paused Redis is not lost: reads miss
// until it is delivered, and once Redis resumes the stale entry is gone.
func TestRedis_InvalidationDuringAPauseIsDeliveredAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	s := cache.NewRedis(srv.Client(t), cache.RedisConfig{OpenFor: 300 * time.Millisecond}, quiet())
	_, seq, _ := s.GetMany(ctx, nil)
	if err := s.Set(ctx, "k", []byte("old"), time.Minute, []string{"User:1"}, seq); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	start := time.Now()
	if err := s.Invalidate(ctx, "User:1"); err == nil {
		t.Fatal("an invalidation reached a paused Redis")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the failing invalidation took %s", d)
	}
	srv.Resume(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok, err := s.Get(ctx, "k")
		if ok && string(v) == "old" {
			t.Fatal("the entry invalidated during the pause was served")
		}
		if err == nil && !ok {
			break // delivered: the entry is gone and the cache is usable
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deferred invalidation never arrived: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the retry loop
	}
	// Another client sees the entry gone too.
	if n, err := srv.Client(t).Exists(ctx, "ug:v:k").Result(); err != nil || n != 0 {
		t.Errorf("the stale entry is still in Redis: %d %v", n, err)
	}
}

// A flush loses every entry, and a value computed before the flush is not
// stored after it.
func TestRedis_FlushMeansMissesNotStaleData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	s := cache.NewRedis(srv.Client(t), cache.RedisConfig{}, quiet())
	if err := s.Invalidate(ctx, "warm-up"); err != nil { // sequence > 0
		t.Fatal(err)
	}
	_, seq, _ := s.GetMany(ctx, nil)
	if err := s.Set(ctx, "k", []byte("v"), time.Minute, []string{"User:1"}, seq); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("after a flush: hit=%v err=%v", ok, err)
	}
	if err := s.Set(ctx, "k2", []byte("v"), time.Minute, []string{"User:1"}, seq); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ctx, "k2"); ok {
		t.Error("a value computed before the flush was stored after it")
	}
}
