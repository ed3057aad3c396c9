package cache

import (
	"context"
	"time"
)

// AfterReplicaLag wraps a store for an API that reads replicas. A change is
// invalidated at its commit on the primary, but a replica replays it a
// little later, so a read there in between can fill the cache with the old
// value after the invalidation. Invalidating the same tags once more, lag
// after the first, removes such an entry (and Set refuses any fill read
// before the second invalidation), so a stale entry lives at most lag. The
// replica routing takes a replica out of reads once it lags more than
// that (DATABASE_REPLICA_MAX_LAG), which is what makes the bound hold.
//
// The second invalidation is in memory: if the instance dies within lag of
// a change, a stale entry may live until its TTL.
func AfterReplicaLag(store Store, lag time.Duration) Store {
	if lag <= 0 {
		return store
	}
	return &lagging{Store: store, lag: lag}
}

type lagging struct {
	Store
	lag time.Duration
}

func (l *lagging) Invalidate(ctx context.Context, tags ...string) error {
	err := l.Store.Invalidate(ctx, tags...)
	again := append([]string(nil), tags...)
	time.AfterFunc(l.lag, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = l.Store.Invalidate(ctx, again...)
	})
	return err
}
