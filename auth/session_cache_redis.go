package auth

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"

	"github.com/usergraph/usergraph/cache"
)

// RedisCache is the SessionCache shared by every instance: a revocation
// through one instance deletes the entry all of them read. Redis is never
// the source of truth: every failure is a miss (the session is then checked
// in PostgreSQL), and each call is bounded by a short timeout so a hung
// Redis costs latency, not availability.
type RedisCache struct {
	rdb     redis.UniversalClient
	reads   Reader // nil: reads go through rdb
	timeout time.Duration
	log     *slog.Logger
	// decoded remembers each entry's decoding by its bytes: a session is
	// read on every request, and decoding its JSON each time was a twentieth
	// of a cached answer's CPU.
	decoded *lru.Cache[string, decodedSession]
	// copies answers repeated reads from memory; nil: every read asks
	// Redis (see KeepCopies).
	copies *copies
}

type decodedSession struct {
	raw string
	s   CachedSession
}

const generationKey = "authz:generation"

// Reader makes the one read of every authenticated request: an
// auto-pipeliner (cache.PipelinedReads) sends concurrent requests' reads
// together. It bounds each read itself; the caller's deadline is not
// honored.
type Reader interface {
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
}

// NewRedisCache returns a cache on rdb whose reads go through reads (nil:
// through rdb). timeout bounds each call; 0 means 100ms.
func NewRedisCache(rdb redis.UniversalClient, reads Reader, timeout time.Duration, log *slog.Logger) *RedisCache {
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	decoded, _ := lru.New[string, decodedSession](10_000) // errs only for a size < 1
	return &RedisCache{rdb: rdb, reads: reads, timeout: timeout, log: log, decoded: decoded}
}

// UseCoherence makes the cache's writes wait until no instance answers
// from a copy they outdate and, with keep, makes it keep what its reads
// return in memory and answer repeated reads from there while coherent
// vouches for them (see copies). Where any instance sharing the Redis keeps
// copies, every instance must use a Coherent of that Redis, with or
// without keep. It returns c.
func (c *RedisCache) UseCoherence(coherent Coherent, keep bool) *RedisCache {
	c.copies = newCopies(coherent, keep)
	return c
}

// announced returns once no instance answers from a copy read before
// wroteAt, the moment before a write: at once when no Coherent is used.
func (c *RedisCache) announced(ctx context.Context, wroteAt time.Time) {
	if c.copies == nil {
		return
	}
	if err := cache.AwaitInvalidation(ctx, c.copies.coherent, wroteAt); err != nil {
		c.log.WarnContext(ctx, "invalidation not confirmed by every instance; waited out the copies' lifetime", "err", err)
	}
}

func (c *RedisCache) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Get implements SessionCache: one MGET reads the entry and the generation,
// and the keys of a ReadAlong in ctx.
func (c *RedisCache) Get(ctx context.Context, key string) (CachedSession, bool, int64) {
	keys := []string{key, generationKey}
	along := readAlongFrom(ctx)
	if along != nil {
		keys = append(keys, along.Keys...)
	}
	vals, err := c.read(ctx, keys)
	if err != nil {
		c.log.WarnContext(ctx, "session cache read failed; checking PostgreSQL", "err", err)
		return CachedSession{}, false, -1
	}
	if along != nil {
		along.Vals = make([][]byte, len(along.Keys))
		for i, v := range vals[2:] {
			if s, ok := v.(string); ok {
				along.Vals[i] = unsafe.Slice(unsafe.StringData(s), len(s)) // read-only: see ReadAlong
			}
		}
		along.Read = true
	}
	gen := int64(0) // never bumped yet
	if g, ok := vals[1].(string); ok {
		if gen, err = strconv.ParseInt(g, 10, 64); err != nil {
			gen = -1
		}
	}
	raw, ok := vals[0].(string)
	if !ok {
		return CachedSession{}, false, gen
	}
	if d, ok := c.decoded.Get(key); ok && d.raw == raw {
		return d.s, true, gen
	}
	var s CachedSession
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return CachedSession{}, false, gen
	}
	c.decoded.Add(key, decodedSession{raw: raw, s: s})
	return s, true, gen
}

// read is Get's MGET, answered from copies when they all are usable.
func (c *RedisCache) read(ctx context.Context, keys []string) ([]any, error) {
	var stamp copyOf
	keep := false
	if c.copies != nil {
		if vals, ok := c.copies.get(keys); ok {
			return vals, nil
		}
		stamp, keep = c.copies.begin()
	}
	var vals []any
	var err error
	if c.reads != nil { // bounded by its own timeout: no deadline to make
		vals, err = c.reads.MGet(ctx, keys...).Result()
	} else {
		ctx, cancel := c.ctx(ctx)
		vals, err = c.rdb.MGet(ctx, keys...).Result()
		cancel()
	}
	if err == nil && keep {
		c.copies.put(stamp, keys, vals)
	}
	return vals, err
}

// Set implements SessionCache. It drops this instance's copy of the entry
// (a refreshed entry replaces one that sent the session check to
// PostgreSQL), without telling the others: a Set changes nothing a copy
// vouches for, since a revocation or a permission change is a Delete or a
// BumpGeneration.
func (c *RedisCache) Set(ctx context.Context, key string, s CachedSession, ttl time.Duration) {
	raw, err := json.Marshal(s)
	if err != nil {
		return
	}
	if c.copies != nil {
		defer c.copies.drop(key)
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Set(ctx, key, raw, ttl).Err(); err != nil {
		c.log.WarnContext(ctx, "session cache write failed", "err", err)
	}
}

// Delete implements SessionCache. A failure is logged loudly: until the
// entry's TTL runs out, other instances could still accept the session.
// With copies kept, it returns once no instance answers from a copy of
// them.
func (c *RedisCache) Delete(ctx context.Context, keys ...string) {
	wroteAt := time.Now()
	dctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Del(dctx, keys...).Err(); err != nil {
		c.log.ErrorContext(ctx, "session cache delete failed: revoked sessions may be accepted until their cache entry expires", "err", err)
	}
	if c.copies != nil {
		c.copies.drop(keys...)
		c.announced(ctx, wroteAt)
	}
}

// BumpGeneration implements SessionCache.
// With copies kept, it returns once no instance answers from a copy of
// the old generation.
func (c *RedisCache) BumpGeneration(ctx context.Context) {
	wroteAt := time.Now()
	bctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Incr(bctx, generationKey).Err(); err != nil {
		c.log.ErrorContext(ctx, "session cache generation bump failed: permission changes may apply late", "err", err)
	}
	c.announced(ctx, wroteAt)
}
