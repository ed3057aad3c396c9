package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
)

// Short leases so that the tests of lapses run in about a second.
var testCoherence = cache.CoherenceConfig{Prefix: "t:", LeaseTTL: 900 * time.Millisecond, Renew: 300 * time.Millisecond}

func newCoherence(t *testing.T, client *redis.Client) *cache.Coherence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cache.NewCoherence(ctx, client, testCoherence)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond for up to 10 s: how long a background loop takes
// to notice is not what these tests pin down, only that it does.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func usableEpoch(t *testing.T, c *cache.Coherence) uint64 {
	t.Helper()
	var epoch uint64
	eventually(t, "copies never became usable", func() bool {
		var ok bool
		epoch, ok = c.Epoch()
		return ok
	})
	return epoch
}

func TestCoherence_InvalidateReturnsOnceEveryInstanceDroppedItsCopies(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	a, b, c := newCoherence(t, r.Client(t)), newCoherence(t, r.Client(t)), newCoherence(t, r.Client(t))
	ctx := context.Background()

	// Many rounds: without the wait, the others would still be handling
	// the message when Invalidate returned, nearly every time.
	for round := range 30 {
		ea, eb, ec := usableEpoch(t, a), usableEpoch(t, b), usableEpoch(t, c)
		if !b.Valid(eb) || !c.Valid(ec) {
			t.Fatalf("round %d: a fresh epoch is not valid", round)
		}
		if err := a.Invalidate(ctx); err != nil {
			t.Fatalf("round %d: Invalidate: %v", round, err)
		}
		for name, still := range map[string]bool{"a": a.Valid(ea), "b": b.Valid(eb), "c": c.Valid(ec)} {
			if still {
				t.Fatalf("round %d: %s still answers from copies read before the invalidation returned", round, name)
			}
		}
	}
}

func TestCoherence_AnInstanceThatDoesNotAnswerIsWaitedForUntilItsLeaseRunsOut(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	admin := r.Client(t)
	a := newCoherence(t, r.Client(t))
	ctx := context.Background()

	// A lease of an instance that stopped (killed, or cut off from Redis):
	// it answers nothing, but may answer from its copies until the lease
	// runs out by its own clock.
	ghostLease := func(d time.Duration) int64 {
		now, err := admin.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		expiry := now.Add(d).UnixMilli()
		if err := admin.ZAdd(ctx, "t:coherence:leases", redis.Z{Score: float64(expiry), Member: "ghost/1"}).Err(); err != nil {
			t.Fatal(err)
		}
		return expiry
	}

	expiry := ghostLease(1500 * time.Millisecond)
	if err := a.Invalidate(ctx); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	now, err := admin.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if now.UnixMilli() < expiry {
		t.Errorf("Invalidate returned %d ms before the silent instance's lease ran out", expiry-now.UnixMilli())
	}

	// A caller that cannot wait that long learns that the invalidation is
	// not confirmed.
	ghostLease(time.Minute)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := a.Invalidate(short); !errors.Is(err, cache.ErrInvalidationUnconfirmed) {
		t.Errorf("Invalidate with a live silent lease and a short deadline = %v, want ErrInvalidationUnconfirmed", err)
	}
}

func TestCoherence_ALostSubscriptionStopsCopiesUntilItIsBack(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	admin := r.Client(t)
	ctx := context.Background()
	a := newCoherence(t, r.Client(t))

	// b connects as a user of its own, so that the test can cut b off
	// from Redis, and keep it off, while a publishes.
	if err := admin.Do(ctx, "ACL", "SETUSER", "bee", "on", ">bee-password", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt.Username, opt.Password = "bee", "bee-password"
	bClient := redis.NewClient(opt)
	t.Cleanup(func() { _ = bClient.Close() })
	b := newCoherence(t, bClient)
	eb := usableEpoch(t, b)

	watch := admin.Subscribe(ctx, "t:coherence:invalidate")
	defer watch.Close()
	if _, err := watch.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}

	// b's subscription drops and cannot come back: a's message is lost
	// for it.
	if err := admin.Do(ctx, "ACL", "SETUSER", "bee", "off").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "USER", "bee").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b kept answering from copies after losing its subscription", func() bool { return !b.Valid(eb) })
	done := make(chan error, 1)
	go func() {
		wait, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done <- a.Invalidate(wait)
	}()
	if _, err := watch.ReceiveMessage(ctx); err != nil {
		t.Fatal(err)
	}

	// b comes back, most likely before its lease ran out, and never got
	// the message: a must not wait for an acknowledgement that cannot
	// come, and b must not answer from copies of before.
	if err := admin.Do(ctx, "ACL", "SETUSER", "bee", "on").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Invalidate while b was cut off: %v", err)
	}
	back := usableEpoch(t, b)
	if back == eb {
		t.Errorf("b answers from copies of epoch %d again after resubscribing", eb)
	}
	// And the invalidations reach it again.
	if err := a.Invalidate(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Valid(back) {
		t.Error("b missed an invalidation after resubscribing")
	}
}

func TestCoherence_AStuckRedisStopsCopiesWithinTheLease(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	b := newCoherence(t, r.Client(t))
	eb := usableEpoch(t, b)

	// A frozen Redis hangs rather than fails: no error tells b, only the
	// silence and its lease running out by its own clock.
	r.Pause(t)
	eventually(t, "b kept answering from copies with Redis frozen", func() bool { return !b.Valid(eb) })
	r.Resume(t)

	back := usableEpoch(t, b)
	if back == eb {
		t.Errorf("b answers from copies of epoch %d again after Redis came back", eb)
	}
}

func TestCoherence_CloseGivesUpTheLease(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	admin := r.Client(t)
	ctx := context.Background()
	b, err := cache.NewCoherence(ctx, r.Client(t), testCoherence)
	if err != nil {
		t.Fatal(err)
	}
	leases := func() []string {
		members, err := admin.ZRange(ctx, "t:coherence:leases", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return members
	}
	if got := leases(); len(got) != 1 || got[0] != b.ID()+"/1" {
		t.Fatalf("leases after start = %q, want [%s/1]", got, b.ID())
	}
	eb, ok := b.Epoch()
	if !ok {
		t.Fatal("a started instance may not keep copies yet")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := leases(); len(got) != 0 {
		t.Errorf("leases after Close = %q, want none", got)
	}
	if b.Valid(eb) {
		t.Error("a closed instance still answers from its copies")
	}
}

func TestCoherence_AnInvalidationThatCannotBeAnnouncedIsNotConfirmed(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	a := newCoherence(t, r.Client(t))
	r.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := a.Invalidate(ctx); !errors.Is(err, cache.ErrInvalidationUnconfirmed) {
		t.Errorf("Invalidate with Redis gone = %v, want ErrInvalidationUnconfirmed", err)
	}
}
