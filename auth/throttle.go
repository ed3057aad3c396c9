package auth

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Brute-force protection. Two mechanisms, both shared by every instance
// through Redis (or kept in-process for a single instance):
//
//   - a per-account counter of consecutive failed logins: from the fifth on,
//     the account is locked for an exponentially growing delay (1s, 2s, 4s,
//     ... capped at 15 minutes). A locked account answers exactly like a
//     wrong password, so a lockout reveals nothing.
//   - per-IP windows: at most N attempts of a kind (logins, registrations)
//     per window, answered with RATE_LIMITED beyond that.

// ThrottleConfig configures brute-force protection.
type ThrottleConfig struct {
	// FreeFailures is how many consecutive failures an account may have
	// before delays start. Defaults to 5.
	FreeFailures int
	// BaseDelay is the first lockout; each further failure doubles it.
	// Defaults to 1 second.
	BaseDelay time.Duration
	// MaxDelay caps the lockout. Defaults to 15 minutes.
	MaxDelay time.Duration
	// IPLimit attempts of one kind per IPWindow per client address.
	// Defaults to 30 per 5 minutes.
	IPLimit  int
	IPWindow time.Duration
}

// WithDefaults returns a copy of c with unset fields filled in.
func (c ThrottleConfig) WithDefaults() ThrottleConfig {
	if c.FreeFailures == 0 {
		c.FreeFailures = 5
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 15 * time.Minute
	}
	if c.IPLimit == 0 {
		c.IPLimit = 30
	}
	if c.IPWindow == 0 {
		c.IPWindow = 5 * time.Minute
	}
	return c
}

// lockout returns how long an account with n consecutive failures is locked
// after its last failure.
func (c ThrottleConfig) lockout(n int) time.Duration {
	if n < c.FreeFailures {
		return 0
	}
	d := c.BaseDelay
	for i := c.FreeFailures; i < n && d < c.MaxDelay; i++ {
		d *= 2
	}
	return min(d, c.MaxDelay)
}

// ThrottleStore keeps the counters.
type ThrottleStore interface {
	// Failures returns an account's consecutive failures and when the last
	// one happened.
	Failures(ctx context.Context, account string) (n int, last time.Time, err error)
	// RecordFailure adds a failure at now; keep is how long to remember it.
	RecordFailure(ctx context.Context, account string, now time.Time, keep time.Duration) error
	// ResetFailures clears an account's failures (after a successful login).
	ResetFailures(ctx context.Context, account string) error
	// Hit counts one attempt in the fixed window containing now and returns
	// the count so far in that window.
	Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
}

// Throttle applies the brute-force rules over a store, with an injected
// clock so tests need not sleep.
type Throttle struct {
	store ThrottleStore
	cfg   ThrottleConfig
	now   func() time.Time
	log   *slog.Logger
}

// NewThrottle returns the brute-force guard.
func NewThrottle(store ThrottleStore, cfg ThrottleConfig, now func() time.Time, log *slog.Logger) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{store: store, cfg: cfg.WithDefaults(), now: now, log: log}
}

// Locked reports whether account may not try a password now. A store error
// fails open (logged): losing Redis must not lock everyone out.
func (t *Throttle) Locked(ctx context.Context, account string) bool {
	n, last, err := t.store.Failures(ctx, account)
	if err != nil {
		t.log.WarnContext(ctx, "login throttle unavailable", "err", err)
		return false
	}
	return t.now().Before(last.Add(t.cfg.lockout(n)))
}

// Failed records a failed login for account.
func (t *Throttle) Failed(ctx context.Context, account string) {
	if err := t.store.RecordFailure(ctx, account, t.now(), t.cfg.MaxDelay+time.Hour); err != nil {
		t.log.WarnContext(ctx, "login throttle unavailable", "err", err)
	}
}

// Succeeded clears account's failures.
func (t *Throttle) Succeeded(ctx context.Context, account string) {
	if err := t.store.ResetFailures(ctx, account); err != nil {
		t.log.WarnContext(ctx, "login throttle unavailable", "err", err)
	}
}

// AllowIP counts one attempt of kind from ip and reports whether it is
// within the limit.
func (t *Throttle) AllowIP(ctx context.Context, kind, ip string) bool {
	n, err := t.store.Hit(ctx, "ip:"+kind+":"+ip, t.now(), t.cfg.IPWindow)
	if err != nil {
		t.log.WarnContext(ctx, "IP rate limit unavailable", "err", err)
		return true
	}
	return n <= t.cfg.IPLimit
}

// MemoryThrottleStore keeps the counters in-process: right for one
// instance only.
type MemoryThrottleStore struct {
	mu       sync.Mutex
	failures map[string]failureRecord
	windows  map[string]int
}

type failureRecord struct {
	n    int
	last time.Time
}

// NewMemoryThrottleStore returns an empty in-process store.
func NewMemoryThrottleStore() *MemoryThrottleStore {
	return &MemoryThrottleStore{failures: map[string]failureRecord{}, windows: map[string]int{}}
}

// Failures implements ThrottleStore.
func (s *MemoryThrottleStore) Failures(_ context.Context, account string) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.failures[account]
	return r.n, r.last, nil
}

// RecordFailure implements ThrottleStore.
func (s *MemoryThrottleStore) RecordFailure(_ context.Context, account string, now time.Time, keep time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.failures[account]
	if !r.last.IsZero() && now.Sub(r.last) > keep {
		r.n = 0
	}
	s.failures[account] = failureRecord{n: r.n + 1, last: now}
	return nil
}

// ResetFailures implements ThrottleStore.
func (s *MemoryThrottleStore) ResetFailures(_ context.Context, account string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, account)
	return nil
}

// Hit implements ThrottleStore. Old windows are dropped as new ones start.
func (s *MemoryThrottleStore) Hit(_ context.Context, key string, now time.Time, window time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.windows) > 100_000 {
		s.windows = map[string]int{}
	}
	k := key + ":" + strconv.FormatInt(now.UnixNano()/int64(window), 10)
	s.windows[k]++
	return s.windows[k], nil
}

// RedisThrottleStore keeps the counters in Redis, shared by every instance.
type RedisThrottleStore struct {
	rdb     redis.UniversalClient
	timeout time.Duration
}

// NewRedisThrottleStore returns a store on rdb; timeout bounds each call
// (0: 100ms).
func NewRedisThrottleStore(rdb redis.UniversalClient, timeout time.Duration) *RedisThrottleStore {
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	return &RedisThrottleStore{rdb: rdb, timeout: timeout}
}

// Failures implements ThrottleStore.
func (s *RedisThrottleStore) Failures(ctx context.Context, account string) (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	vals, err := s.rdb.HMGet(ctx, "fail:"+account, "n", "last").Result()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("reading login failures: %w", err)
	}
	if vals[0] == nil {
		return 0, time.Time{}, nil
	}
	n, _ := strconv.Atoi(fmt.Sprint(vals[0]))
	ns, _ := strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64)
	return n, time.Unix(0, ns), nil
}

// RecordFailure implements ThrottleStore.
func (s *RedisThrottleStore) RecordFailure(ctx context.Context, account string, now time.Time, keep time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := "fail:" + account
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, key, "n", 1)
		p.HSet(ctx, key, "last", now.UnixNano())
		p.Expire(ctx, key, keep)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording login failure: %w", err)
	}
	return nil
}

// ResetFailures implements ThrottleStore.
func (s *RedisThrottleStore) ResetFailures(ctx context.Context, account string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Del(ctx, "fail:"+account).Err(); err != nil {
		return fmt.Errorf("resetting login failures: %w", err)
	}
	return nil
}

// Hit implements ThrottleStore.
func (s *RedisThrottleStore) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k := "rl:" + key + ":" + strconv.FormatInt(now.UnixNano()/int64(window), 10)
	var incr *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, k)
		p.Expire(ctx, k, window)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting attempts: %w", err)
	}
	return int(incr.Val()), nil
}
