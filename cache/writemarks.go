package cache

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// WriteMarks remember which clients wrote in the last few seconds, so that
// their reads can go to the primary instead of a replica that may not have
// replayed the write yet (read-your-writes). A client is named by keys the
// caller chooses (its user, its address). Marks live in Redis so that every
// instance behind the balancer honours them; NewMemoryWriteMarks is for a
// single instance.
type WriteMarks struct {
	window  time.Duration
	timeout time.Duration
	rdb     redis.UniversalClient // nil: in process

	mu    sync.Mutex
	local map[string]time.Time
	now   func() time.Time
}

// NewRedisWriteMarks keeps marks in Redis for window; each call waits at most
// timeout for Redis.
func NewRedisWriteMarks(rdb redis.UniversalClient, window, timeout time.Duration) *WriteMarks {
	return &WriteMarks{window: window, timeout: timeout, rdb: rdb}
}

// NewMemoryWriteMarks keeps marks in this process for window.
func NewMemoryWriteMarks(window time.Duration) *WriteMarks {
	return &WriteMarks{window: window, local: map[string]time.Time{}, now: time.Now}
}

const writeMarkPrefix = "ug:wrote:"

// Mark records that the clients named by keys just wrote. Failing to reach
// Redis is only logged by the caller's metrics: a missing mark costs a read
// that may be a moment stale, never a lost write.
func (m *WriteMarks) Mark(ctx context.Context, keys ...string) {
	if m.window <= 0 || len(keys) == 0 {
		return
	}
	if m.rdb == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		now := m.now()
		for k, until := range m.local { // expire old marks as new ones come
			if !now.Before(until) {
				delete(m.local, k)
			}
		}
		for _, k := range keys {
			m.local[k] = now.Add(m.window)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
	defer cancel()
	_, _ = m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, writeMarkPrefix+k, "1", m.window)
		}
		return nil
	})
}

// Marked reports whether any of the clients named by keys wrote within the
// window. When Redis cannot answer it reports true: reading the primary is
// always correct, only less spread out.
func (m *WriteMarks) Marked(ctx context.Context, keys ...string) bool {
	if len(keys) == 0 {
		return false
	}
	if m.rdb == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		now := m.now()
		for _, k := range keys {
			if until, ok := m.local[k]; ok && now.Before(until) {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = writeMarkPrefix + k
	}
	n, err := m.rdb.Exists(ctx, full...).Result()
	return err != nil || n > 0
}
