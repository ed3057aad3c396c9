package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/cache"
)

// lazyCoherence is the cache.Coherence of this instance once it could be
// started: start-up never waits for Redis (see serve). Until then no copy
// is kept, and every invalidation reports itself unconfirmed, so that the
// writer waits out the copies' lifetime (cache.CopyLifetime) for the other
// instances.
type lazyCoherence struct {
	c      atomic.Pointer[cache.Coherence]
	cancel context.CancelFunc
	done   chan struct{}
}

var errCoherenceNotStarted = errors.New("invalidation channel not started yet")

// startCoherence starts the instance's Coherence on rdb in the background,
// retrying every few seconds while Redis cannot be reached.
func startCoherence(ctx context.Context, rdb *redis.Client, log *slog.Logger) *lazyCoherence {
	ctx, cancel := context.WithCancel(ctx)
	l := &lazyCoherence{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			attempt, stop := context.WithTimeout(ctx, 5*time.Second)
			c, err := cache.NewCoherence(attempt, rdb, cache.CoherenceConfig{Prefix: "ug:", Logger: log})
			stop()
			if err == nil {
				l.c.Store(c)
				log.Info("invalidation channel started")
				return
			}
			log.Warn("invalidation channel not started; no copies are kept and invalidations wait out the copies' lifetime until it is", "err", err)
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

func (l *lazyCoherence) Epoch() (uint64, bool) {
	if c := l.c.Load(); c != nil {
		return c.Epoch()
	}
	return 0, false
}

func (l *lazyCoherence) Valid(epoch uint64) bool {
	c := l.c.Load()
	return c != nil && c.Valid(epoch)
}

func (l *lazyCoherence) Invalidate(ctx context.Context) error {
	if c := l.c.Load(); c != nil {
		return c.Invalidate(ctx)
	}
	return errCoherenceNotStarted
}

// Close stops the start-up attempts and the Coherence, giving up its lease.
func (l *lazyCoherence) Close() {
	l.cancel()
	<-l.done
	if c := l.c.Load(); c != nil {
		_ = c.Close()
	}
}
