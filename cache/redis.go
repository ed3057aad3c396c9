package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// Redis is the Store shared by every instance. Each call is bounded by a
// short timeout (and the request's own deadline), and a circuit breaker
// stops calling a Redis that keeps failing for a few seconds, so a dead or
// hung Redis costs one timeout, not one per request. Nothing here blocks
// start-up.
//
// An invalidation that cannot reach Redis is kept and retried before the
// cache is used again; until then reads miss and nothing is stored, so
// entries made stale during an outage are never served after it.
//
// All keys live in one keyspace; use a single Redis (or Sentinel), not
// Redis Cluster.
type Redis struct {
	rdb      redis.UniversalClient
	reads    *PipelinedReads // nil: reads go through rdb
	timeout  time.Duration
	cb       *gobreaker.CircuitBreaker[any]
	log      *slog.Logger
	announce Announcer // nil: no instance keeps copies

	mu       sync.Mutex
	pending  map[string]struct{} // tags whose invalidation has not reached Redis
	flushing bool                // a goroutine retries the pending invalidations
}

// RedisConfig tunes the Redis store.
type RedisConfig struct {
	// Timeout bounds each call. Defaults to 100ms.
	Timeout time.Duration
	// OpenFor is how long the breaker stays open before trying Redis
	// again. Defaults to 5s.
	OpenFor time.Duration
	// OnStateChange is told when the breaker opens, half-opens or closes.
	OnStateChange func(state string)
	// Reads, when set, carries GetMany's reads (those of every cached
	// request), batched with other requests' reads; its own timeout bounds
	// them. Nil: they go through the store's client like the rest.
	Reads *PipelinedReads
	// Announce, when set, announces each invalidation that reached Redis
	// to the instances keeping copies of its entries in memory (the
	// session check reads cached answers' digests along, see
	// auth.RedisCache.UseCoherence), and Invalidate returns once none
	// answers from a copy read before it (AwaitInvalidation).
	Announce Announcer
}

const (
	keyPrefix = "ug:"
	seqKey    = keyPrefix + "inv:seq"
)

// NewRedis returns a store on rdb.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig, log *slog.Logger) *Redis {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	r := &Redis{rdb: rdb, reads: cfg.Reads, timeout: cfg.Timeout, log: log, pending: map[string]struct{}{},
		announce: cfg.Announce}
	r.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    "redis",
		Timeout: cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= 3
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log.Warn("redis circuit breaker", "from", from.String(), "to", to.String())
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(to.String())
			}
		},
		// A request canceled by its client says nothing about Redis.
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled)
		},
	})
	return r
}

// call runs fn through the breaker with the call timeout.
func (r *Redis) call(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.breaker(func() error {
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		return fn(ctx)
	})
}

// breaker runs fn through the circuit breaker.
func (r *Redis) breaker(fn func() error) error {
	_, err := r.cb.Execute(func() (any, error) { return nil, fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ErrUnavailable
	}
	return err
}

// digestKey implements digestKeyer: the Redis key of the digest of key's
// entry, which Set stores beside the value with the same TTL and tags, so
// an invalidation removes both in one script. (Eviction may take one
// before the other: a digest left alone still names bytes no change has
// touched, and a value left alone is a miss.) False when not readable.
func (r *Redis) digestKey(key string) (string, bool) {
	return keyPrefix + "d:" + key, r.readable()
}

// readable implements digestKeyer: false while an invalidation is pending
// or the breaker is not closed, when reads must go through ready, or miss.
func (r *Redis) readable() bool {
	if r.cb.State() != gobreaker.StateClosed {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) == 0
}

// ready flushes invalidations that failed earlier; the cache may be used
// only when none is left.
func (r *Redis) ready(ctx context.Context) bool {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return true
	}
	tags := make([]string, 0, len(r.pending))
	for t := range r.pending {
		tags = append(tags, t)
	}
	r.mu.Unlock()
	if err := r.invalidate(ctx, tags); err != nil {
		return false
	}
	r.mu.Lock()
	for _, t := range tags {
		delete(r.pending, t)
	}
	empty := len(r.pending) == 0
	r.mu.Unlock()
	return empty
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if !r.ready(ctx) {
		return nil, false, ErrUnavailable
	}
	var val []byte
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		val, err = r.rdb.Get(ctx, keyPrefix+"v:"+key).Bytes()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return val, true, nil
}

// setScript stores a value unless the store was flushed or one of its tags
// was invalidated since the value's computation began. With a digest it
// also stores the digest under KEYS[4], for the same time and under the
// same tags (see digestKey).
var setScript = redis.NewScript(`
local seq = tonumber(ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur < seq then return 0 end
for i = 5, #ARGV do
  local inv = redis.call('GET', KEYS[3] .. 'inv:' .. ARGV[i])
  if inv and tonumber(inv) > seq then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local digest = ARGV[4] ~= ''
if digest then redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[2]) end
local ttl = tonumber(ARGV[2])
for i = 5, #ARGV do
  local t = KEYS[3] .. 'tag:' .. ARGV[i]
  redis.call('SADD', t, KEYS[1])
  if digest then redis.call('SADD', t, KEYS[4]) end
  if redis.call('PTTL', t) < ttl then redis.call('PEXPIRE', t, ttl) end
end
return 1
`)

// invalidateScript removes every entry under the tags and marks them
// invalidated at a new sequence (the marks outlive any computation).
var invalidateScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
for i = 1, #ARGV do
  local t = KEYS[2] .. 'tag:' .. ARGV[i]
  local keys = redis.call('SMEMBERS', t)
  for j = 1, #keys, 500 do
    redis.call('DEL', unpack(keys, j, math.min(j + 499, #keys)))
  end
  redis.call('DEL', t)
  redis.call('SET', KEYS[2] .. 'inv:' .. ARGV[i], seq, 'PX', 3600000)
end
return seq
`)

// Set implements Store. The value's digest is stored beside it, for
// readers that keep a copy (see digestKey).
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration, tags []string, seq uint64) error {
	if !r.ready(ctx) {
		return ErrUnavailable
	}
	args := setArgs(val, ttl, seq, digest(val), tags)
	return r.call(ctx, func(ctx context.Context) error {
		return setScript.Run(ctx, r.rdb, []string{keyPrefix + "v:" + key, seqKey, keyPrefix, keyPrefix + "d:" + key}, args...).Err()
	})
}

// setArgs are setScript's arguments; digest "" stores none.
func setArgs(val []byte, ttl time.Duration, seq uint64, digest string, tags []string) []any {
	args := make([]any, 0, 4+len(tags))
	args = append(args, val, ttl.Milliseconds(), strconv.FormatUint(seq, 10), digest)
	for _, t := range tags {
		args = append(args, t)
	}
	return args
}

// GetMany implements Store: one MGET with the sequence.
func (r *Redis) GetMany(ctx context.Context, keys []string) ([][]byte, uint64, error) {
	if !r.ready(ctx) {
		return nil, 0, ErrUnavailable
	}
	full := make([]string, 0, len(keys)+1)
	full = append(full, seqKey)
	for _, k := range keys {
		full = append(full, keyPrefix+"v:"+k)
	}
	var vals []any
	err := r.breaker(func() error {
		var err error
		if r.reads != nil { // bounded by its own timeout: no deadline to make
			vals, err = r.reads.MGet(ctx, full...).Result()
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		vals, err = r.rdb.MGet(ctx, full...).Result()
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	var seq uint64
	if s, ok := vals[0].(string); ok {
		seq, _ = strconv.ParseUint(s, 10, 64)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals[1:] {
		if s, ok := v.(string); ok {
			out[i] = unsafe.Slice(unsafe.StringData(s), len(s)) // read-only: see Store.GetMany
		}
	}
	return out, seq, nil
}

// SetMany implements Store: the entries' scripts in one pipeline.
func (r *Redis) SetMany(ctx context.Context, entries []Entry, seq uint64) error {
	if len(entries) == 0 {
		return nil
	}
	if !r.ready(ctx) {
		return ErrUnavailable
	}
	return r.call(ctx, func(ctx context.Context) error {
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range entries {
				// EVAL, not EVALSHA: a pipeline cannot fall back when Redis
				// (restarted) lacks the script. No digest: entities are
				// read whole.
				setScript.Eval(ctx, p, []string{keyPrefix + "v:" + e.Key, seqKey, keyPrefix, keyPrefix + "d:" + e.Key},
					setArgs(e.Val, e.TTL, seq, "", e.Tags)...)
			}
			return nil
		})
		return err
	})
}

// Invalidate implements Store. When Redis cannot be reached the tags are
// kept and retried before the cache is used again.
func (r *Redis) Invalidate(ctx context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	// Even a canceled request's change is committed: invalidate regardless.
	wroteAt := time.Now()
	err := r.invalidate(context.WithoutCancel(ctx), tags)
	if err == nil {
		r.announced(ctx, wroteAt)
	} else {
		r.mu.Lock()
		for _, t := range tags {
			r.pending[t] = struct{}{}
		}
		if !r.flushing {
			r.flushing = true
			go r.flushLoop()
		}
		r.mu.Unlock()
		r.log.WarnContext(ctx, "cache invalidation deferred: Redis unreachable; the cache is bypassed until it succeeds", "tags", len(tags), "err", err)
	}
	return err
}

// flushLoop retries pending invalidations every 250ms, past the breaker,
// until they reach Redis: when Redis comes back, the stale entries go
// before other instances' breakers let them read again.
func (r *Redis) flushLoop() {
	for {
		time.Sleep(250 * time.Millisecond)
		r.mu.Lock()
		tags := make([]string, 0, len(r.pending))
		for t := range r.pending {
			tags = append(tags, t)
		}
		r.mu.Unlock()
		wroteAt := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.runInvalidate(ctx, tags)
		cancel()
		if err != nil {
			continue
		}
		r.announced(context.Background(), wroteAt)
		r.mu.Lock()
		for _, t := range tags {
			delete(r.pending, t)
		}
		if len(r.pending) == 0 {
			r.flushing = false
			r.mu.Unlock()
			r.log.Info("deferred cache invalidations reached Redis")
			return
		}
		r.mu.Unlock()
	}
}

// announced returns once no instance answers from a copy read before
// wroteAt (see RedisConfig.Announce).
func (r *Redis) announced(ctx context.Context, wroteAt time.Time) {
	if r.announce == nil {
		return
	}
	if err := AwaitInvalidation(ctx, r.announce, wroteAt); err != nil {
		r.log.WarnContext(ctx, "invalidation not confirmed by every instance; waited out the copies' lifetime", "err", err)
	}
}

func (r *Redis) invalidate(ctx context.Context, tags []string) error {
	err := r.call(ctx, func(ctx context.Context) error { return r.runInvalidate(ctx, tags) })
	if err != nil {
		return fmt.Errorf("error invalidating cache: %w", err)
	}
	return nil
}

// runInvalidate runs the invalidation script once (the breaker is the
// caller's business).
func (r *Redis) runInvalidate(ctx context.Context, tags []string) error {
	args := make([]any, len(tags))
	for i, t := range tags {
		args[i] = t
	}
	return invalidateScript.Run(ctx, r.rdb, []string{seqKey, keyPrefix}, args...).Err()
}

// BreakerState is the circuit breaker's state: closed, half-open or open.
func (r *Redis) BreakerState() string { return r.cb.State().String() }
