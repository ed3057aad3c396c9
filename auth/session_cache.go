package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// SessionCache keeps recently validated sessions so that most requests skip
// the PostgreSQL lookup. It only ever shortens a lookup: a miss, an error or
// an entry from an older generation falls back to PostgreSQL, so flushing
// the cache logs nobody out.
type SessionCache interface {
	// Get returns the entry for a token hash and the current generation,
	// in one round trip: every authenticated request asks for both. The
	// generation is bumped whenever permissions change anywhere (a role's
	// permissions, a grant): entries from an older generation are ignored.
	// It is -1 when it cannot be read, which no entry carries.
	Get(ctx context.Context, key string) (s CachedSession, ok bool, generation int64)
	// Set stores an entry for ttl.
	Set(ctx context.Context, key string, s CachedSession, ttl time.Duration)
	// Delete removes entries; revocation calls it before returning.
	Delete(ctx context.Context, keys ...string)
	// BumpGeneration invalidates every entry at once.
	BumpGeneration(ctx context.Context)
}

// ReadAlong asks the session cache for other keys of the same store, read
// in the round trip that checks the session: a request whose next read is
// known before it is authenticated (a cached answer's digest, say) then
// makes one round trip instead of two. The keys are read as they are, whatever the
// session turns out to be; the caller decides what the values may answer
// once it knows the viewer. A cache that cannot read them leaves Read false.
type ReadAlong struct {
	Keys []string
	// Vals are the values read, nil for a missing key. They share the
	// Redis client's reply (copying a cached answer read this way was once
	// a third of the fast path's garbage), so they are read-only.
	Vals [][]byte
	Read bool
}

type readAlongKey struct{}

// WithReadAlong returns ctx asking the session check in it to read along.
func WithReadAlong(ctx context.Context, along *ReadAlong) context.Context {
	return context.WithValue(ctx, readAlongKey{}, along)
}

func readAlongFrom(ctx context.Context) *ReadAlong {
	along, _ := ctx.Value(readAlongKey{}).(*ReadAlong)
	return along
}

// CachedSession is what the cache keeps for a session.
type CachedSession struct {
	Viewer     Viewer
	ExpiresAt  time.Time // absolute end
	LastSeenAt time.Time
	Generation int64
}

// MemoryCache is the in-process SessionCache for a single instance (the
// embedded default, or REDIS_URL unset).
type MemoryCache struct {
	mu      sync.Mutex
	entries map[string]memoryEntry
	gen     atomic.Int64
	now     func() time.Time
}

type memoryEntry struct {
	s       CachedSession
	expires time.Time
}

// NewMemoryCache returns an empty in-process cache.
func NewMemoryCache(now func() time.Time) *MemoryCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{entries: map[string]memoryEntry{}, now: now}
}

// Get implements SessionCache.
func (c *MemoryCache) Get(_ context.Context, key string) (CachedSession, bool, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, key)
		return CachedSession{}, false, c.gen.Load()
	}
	return e.s, true, c.gen.Load()
}

// Set implements SessionCache.
func (c *MemoryCache) Set(_ context.Context, key string, s CachedSession, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 100_000 { // bounded: drop everything rather than grow without limit
		c.entries = map[string]memoryEntry{}
	}
	c.entries[key] = memoryEntry{s: s, expires: c.now().Add(ttl)}
}

// Delete implements SessionCache.
func (c *MemoryCache) Delete(_ context.Context, keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.entries, k)
	}
}

// BumpGeneration implements SessionCache.
func (c *MemoryCache) BumpGeneration(context.Context) { c.gen.Add(1) }
