// Package ratelimit owns the cost-based request budget, as the GitHub
// GraphQL API has it: every client (a user, or an address when anonymous)
// has a budget of points per window, and each operation is charged by its
// complexity. The budget lives in Redis so every instance charges the same
// account; a Redis failure lets the request through (it only ever protects,
// never decides correctness).
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store adds cost to a client's use of the current window and returns the
// use so far and when the window ends.
type Store interface {
	Charge(ctx context.Context, key string, cost int, window time.Duration) (used int, resetAt time.Time, err error)
}

// Status is one client's budget after an operation was charged.
type Status struct {
	Cost, Limit, Remaining int
	ResetAt                time.Time
	// Limited: the operation did not fit in what was left, and is refused.
	Limited bool
}

// Limiter charges operations against budgets.
type Limiter struct {
	store  Store
	limit  int
	window time.Duration
	log    *slog.Logger
}

// New returns a limiter of limit points per window.
func New(store Store, limit int, window time.Duration, log *slog.Logger) *Limiter {
	return &Limiter{store: store, limit: limit, window: window, log: log}
}

// CostOf turns an operation's complexity into points, as GitHub does: one
// point per hundred, at least one.
func CostOf(complexity int) int { return max(1, (complexity+99)/100) }

// Charge charges cost to client. When the store fails, the request passes
// uncharged.
func (l *Limiter) Charge(ctx context.Context, client string, cost int) Status {
	used, reset, err := l.store.Charge(ctx, "ug:rl:"+client, cost, l.window)
	if err != nil {
		l.log.WarnContext(ctx, "rate limit store unavailable; request not charged", "err", err)
		return Status{Cost: cost, Limit: l.limit, Remaining: l.limit, ResetAt: time.Now().Add(l.window)}
	}
	s := Status{Cost: cost, Limit: l.limit, Remaining: max(0, l.limit-used), ResetAt: reset}
	if used > l.limit {
		s.Limited = true
		// A refused operation does not use up the budget it was refused
		// for: give the points back so the client can retry a cheaper one.
		if _, _, err := l.store.Charge(ctx, "ug:rl:"+client, -cost, l.window); err == nil {
			s.Remaining = max(0, l.limit-(used-cost))
		}
	}
	return s
}

// Redis keeps budgets in Redis: one counter per client per window.
type Redis struct {
	rdb     redis.UniversalClient
	timeout time.Duration
}

// NewRedis returns a Redis store; each call is bounded by timeout.
func NewRedis(rdb redis.UniversalClient, timeout time.Duration) *Redis {
	return &Redis{rdb: rdb, timeout: timeout}
}

var chargeScript = redis.NewScript(`
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {used, ttl}
`)

// Charge implements Store.
func (r *Redis) Charge(ctx context.Context, key string, cost int, window time.Duration) (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := chargeScript.Run(ctx, r.rdb, []string{key}, strconv.Itoa(cost), window.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, time.Time{}, fmt.Errorf("error charging rate limit: %w", err)
	}
	return int(res[0]), time.Now().Add(time.Duration(res[1]) * time.Millisecond), nil
}

// Memory keeps budgets in process: the embedded default's store.
type Memory struct {
	mu      sync.Mutex
	windows map[string]*memWindow
	now     func() time.Time
}

type memWindow struct {
	used  int
	reset time.Time
}

// NewMemory returns an in-process store; now nil means time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{windows: map[string]*memWindow{}, now: now}
}

// Charge implements Store.
func (m *Memory) Charge(_ context.Context, key string, cost int, window time.Duration) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	w := m.windows[key]
	if w == nil || !now.Before(w.reset) {
		if len(m.windows) > 100_000 {
			for k, old := range m.windows {
				if !now.Before(old.reset) {
					delete(m.windows, k)
				}
			}
		}
		w = &memWindow{reset: now.Add(window)}
		m.windows[key] = w
	}
	w.used += cost
	return w.used, w.reset, nil
}

// state is what one request learned about its client's budget, for the
// rateLimit field and the X-RateLimit-* headers.
type stateKey struct{}

// State holds the request's rate limit status once its operation is
// charged.
type State struct {
	mu     sync.Mutex
	status *Status
}

// WithState gives a request a place for its status.
func WithState(ctx context.Context) (context.Context, *State) {
	s := &State{}
	return context.WithValue(ctx, stateKey{}, s), s
}

// StateFrom returns the request's state, or nil.
func StateFrom(ctx context.Context) *State {
	s, _ := ctx.Value(stateKey{}).(*State)
	return s
}

// Set records the status (a no-op without a state, like Get).
func (s *State) Set(st Status) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.status = &st
	s.mu.Unlock()
}

// Get returns the status, or nil when the operation was not charged.
func (s *State) Get() *Status {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}
