package cache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/redistest"
)

// batches counts the round trips that carry reads (a pipeline, or a read
// sent alone) and the reads in them.
type batches struct{ n, cmds atomic.Int64 }

func (b *batches) DialHook(next redis.DialHook) redis.DialHook { return next }
func (b *batches) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "mget" { // a batch of one goes alone
			b.n.Add(1)
			b.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (b *batches) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		reads := 0
		for _, c := range cmds {
			if c.Name() == "mget" { // not a new connection's HELLO
				reads++
			}
		}
		if reads > 0 {
			b.n.Add(1)
			b.cmds.Add(int64(reads))
		}
		return next(ctx, cmds)
	}
}

// Reads made while another is in flight go together in the next round
// trip, each still answered with its own keys' values.
func TestPipelinedReads_ConcurrentReadsShareRoundTrips(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	const readers = 16
	for i := range readers {
		if err := rs.Client(t).Set(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	reads := rs.Reads(t, 10*time.Second)
	count := &batches{}
	reads.AddHook(count)

	// Redis holds the first read while the others arrive.
	rs.Pause(t)
	var wg sync.WaitGroup
	got := make([][]any, readers)
	errs := make([]error, readers)
	for i := range readers {
		wg.Go(func() { got[i], errs[i] = reads.MGet(ctx, fmt.Sprint("k", i), "missing").Result() })
	}
	time.Sleep(300 * time.Millisecond)
	rs.Resume(t)
	wg.Wait()

	for i := range readers {
		if errs[i] != nil || len(got[i]) != 2 || got[i][0] != fmt.Sprint("v", i) || got[i][1] != nil {
			t.Fatalf("read %d: %v, %v", i, got[i], errs[i])
		}
	}
	// A plain client makes one round trip per read: 16.
	if n := count.n.Load(); n < 1 || n > 3 || count.cmds.Load() != readers {
		t.Fatalf("%d reads took %d round trips carrying %d of them; want 1 to 3 carrying all", readers, n, count.cmds.Load())
	}
}

// A hung Redis costs a read its timeout, not the caller's (longer)
// deadline, and reads work again once Redis answers.
func TestPipelinedReads_AHungRedisCostsOneTimeout(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	ctx := context.Background()
	if err := rs.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	reads := rs.Reads(t, 200*time.Millisecond)
	if err := reads.MGet(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}

	rs.Pause(t)
	start := time.Now()
	err := reads.MGet(ctx, "k").Err()
	waited := time.Since(start)
	rs.Resume(t)
	if err == nil || waited > 2*time.Second {
		t.Fatalf("a read of a hung Redis returned %v after %s; want an error after about 200ms", err, waited)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		vals, err := reads.MGet(ctx, "k").Result()
		if err == nil && len(vals) == 1 && vals[0] == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads did not recover after Redis resumed: %v, %v", vals, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
