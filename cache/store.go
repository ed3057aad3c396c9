// Package cache owns what Usergraph keeps in Redis (or in process on the
// embedded default) to make repeated work cheap: automatic persisted
// queries, whole responses and hot entities, each recorded under the tags
// of what it read so a change removes exactly the entries it made stale.
// With read replicas it also keeps what keeps those caches and reads
// exact: the delayed second invalidation (AfterReplicaLag) and the marks
// of clients that just wrote (WriteMarks).
// PostgreSQL stays the source of truth: every cache failure is a miss.
package cache

import (
	"context"
	"errors"
	"time"
)

// Store keeps cached bytes under keys, each recorded under tags (such as
// "User:<id>" or "users") so Invalidate can remove every entry that read
// what a change touched.
//
// Exactness under concurrency: a value computed from data read before a
// change must not be stored after that change's invalidation. Callers take
// the invalidation sequence (GetMany returns it with the values, also for no
// keys) before reading, and Set refuses to
// store when one of the value's tags was invalidated after it.
type Store interface {
	// Get returns the value under key; ok is false on a miss.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set stores val for ttl under tags, unless a tag was invalidated after
	// seq (then it stores nothing and returns nil).
	Set(ctx context.Context, key string, val []byte, ttl time.Duration, tags []string, seq uint64) error
	// Invalidate removes every entry recorded under any of tags, on every
	// instance that shares the store.
	Invalidate(ctx context.Context, tags ...string) error
	// GetMany reads many keys in one round trip (nil for each miss) and
	// returns the invalidation sequence read with them. The values may
	// share the store's own memory: callers only read them.
	GetMany(ctx context.Context, keys []string) (vals [][]byte, seq uint64, err error)
	// SetMany stores many entries in one round trip, each as Set would.
	SetMany(ctx context.Context, entries []Entry, seq uint64) error
}

// Entry is one value to store with its lifetime and tags.
type Entry struct {
	Key  string
	Val  []byte
	TTL  time.Duration
	Tags []string
}

// ErrUnavailable is returned while the circuit breaker keeps calls away
// from a store that keeps failing.
var ErrUnavailable = errors.New("cache: store unavailable")
