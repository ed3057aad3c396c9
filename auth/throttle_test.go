package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/redistest"
)

// Both stores keep the same counts: the in-process one for a single
// instance, Redis for many.
func TestThrottleStores_CountFailuresAndWindows(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	stores := map[string]auth.ThrottleStore{
		"memory": auth.NewMemoryThrottleStore(),
		"redis":  auth.NewRedisThrottleStore(rs.Client(t), time.Second),
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
			for range 3 {
				if err := s.RecordFailure(ctx, "user:a", now, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			n, last, err := s.Failures(ctx, "user:a")
			if err != nil || n != 3 || !last.Equal(now) {
				t.Fatalf("failures: %d at %v (%v), want 3 at %v", n, last, err, now)
			}
			if err := s.ResetFailures(ctx, "user:a"); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := s.Failures(ctx, "user:a"); n != 0 {
				t.Fatalf("after reset: %d", n)
			}
			for i := 1; i <= 3; i++ {
				if got, err := s.Hit(ctx, "ip:login:1.2.3.4", now, 5*time.Minute); err != nil || got != i {
					t.Fatalf("hit %d: %d (%v)", i, got, err)
				}
			}
			if got, _ := s.Hit(ctx, "ip:login:1.2.3.4", now.Add(5*time.Minute), 5*time.Minute); got != 1 {
				t.Fatalf("a new window starts at 1, got %d", got)
			}
		})
	}
}

// The lockout grows 1s, 2s, 4s... from the fifth failure, capped.
func TestThrottle_LockoutGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	th := auth.NewThrottle(auth.NewMemoryThrottleStore(), auth.ThrottleConfig{MaxDelay: 8 * time.Second}, clock, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for range 4 {
		th.Failed(ctx, "a")
	}
	if th.Locked(ctx, "a") {
		t.Fatal("locked after 4 failures")
	}
	wants := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for _, want := range wants {
		th.Failed(ctx, "a")
		now = now.Add(want - time.Millisecond)
		if !th.Locked(ctx, "a") {
			t.Fatalf("unlocked before %s", want)
		}
		now = now.Add(2 * time.Millisecond)
		if th.Locked(ctx, "a") {
			t.Fatalf("still locked after %s", want)
		}
	}
}
