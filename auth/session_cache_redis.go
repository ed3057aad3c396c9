package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is the SessionCache shared by every instance: a revocation
// through one instance deletes the entry all of them read. Redis is never
// the source of truth: every failure is a miss (the session is then checked
// in PostgreSQL), and each call is bounded by a short timeout so a hung
// Redis costs latency, not availability.
type RedisCache struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	log     *slog.Logger
}

const generationKey = "authz:generation"

// NewRedisCache returns a cache on rdb. timeout bounds each call; 0 means
// 100ms.
func NewRedisCache(rdb redis.UniversalClient, timeout time.Duration, log *slog.Logger) *RedisCache {
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	return &RedisCache{rdb: rdb, timeout: timeout, log: log}
}

func (c *RedisCache) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Get implements SessionCache.
func (c *RedisCache) Get(ctx context.Context, key string) (CachedSession, bool) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	raw, err := c.rdb.Get(ctx, key).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.log.WarnContext(ctx, "session cache read failed; checking PostgreSQL", "err", err)
		}
		return CachedSession{}, false
	}
	var s CachedSession
	if err := json.Unmarshal(raw, &s); err != nil {
		return CachedSession{}, false
	}
	return s, true
}

// Set implements SessionCache.
func (c *RedisCache) Set(ctx context.Context, key string, s CachedSession, ttl time.Duration) {
	raw, err := json.Marshal(s)
	if err != nil {
		return
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Set(ctx, key, raw, ttl).Err(); err != nil {
		c.log.WarnContext(ctx, "session cache write failed", "err", err)
	}
}

// Delete implements SessionCache. A failure is logged loudly: until the
// entry's TTL runs out, other instances could still accept the session.
func (c *RedisCache) Delete(ctx context.Context, keys ...string) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Del(ctx, keys...).Err(); err != nil {
		c.log.ErrorContext(ctx, "session cache delete failed: revoked sessions may be accepted until their cache entry expires", "err", err)
	}
}

// Generation implements SessionCache. When Redis cannot be read it returns
// -1, which no entry carries, so every lookup goes to PostgreSQL.
func (c *RedisCache) Generation(ctx context.Context) int64 {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	s, err := c.rdb.Get(ctx, generationKey).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// BumpGeneration implements SessionCache.
func (c *RedisCache) BumpGeneration(ctx context.Context) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if err := c.rdb.Incr(ctx, generationKey).Err(); err != nil {
		c.log.ErrorContext(ctx, "session cache generation bump failed: permission changes may apply late", "err", err)
	}
}
