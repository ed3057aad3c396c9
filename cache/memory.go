package cache

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store inside one process: the embedded default's cache, and
// right for a single instance only (another instance would not see its
// invalidations). It holds at most maxEntries values.
type Memory struct {
	mu         sync.Mutex
	seq        uint64
	entries    map[string]memEntry
	tags       map[string]map[string]struct{}
	invalided  map[string]uint64 // tag -> sequence of its last invalidation
	floor      uint64            // values computed before this sequence are not stored
	maxEntries int
	now        func() time.Time
}

type memEntry struct {
	val     []byte
	expires time.Time
	tags    []string
}

// NewMemory returns an empty in-process store; maxEntries <= 0 means 10,000.
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = 10_000
	}
	return &Memory{entries: map[string]memEntry{}, tags: map[string]map[string]struct{}{},
		invalided: map[string]uint64{}, maxEntries: maxEntries, now: time.Now}
}

// sequence is the current invalidation sequence.
func (m *Memory) sequence() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return nil, false, nil
	}
	if !m.now().Before(e.expires) {
		m.remove(key)
		return nil, false, nil
	}
	return e.val, true, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration, tags []string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq < m.floor {
		return nil
	}
	for _, t := range tags {
		if m.invalided[t] > seq {
			return nil
		}
	}
	if _, ok := m.entries[key]; !ok && len(m.entries) >= m.maxEntries {
		m.evict()
	}
	m.remove(key)
	m.entries[key] = memEntry{val: val, expires: m.now().Add(ttl), tags: tags}
	for _, t := range tags {
		if m.tags[t] == nil {
			m.tags[t] = map[string]struct{}{}
		}
		m.tags[t][key] = struct{}{}
	}
	return nil
}

// GetMany implements Store.
func (m *Memory) GetMany(ctx context.Context, keys []string) ([][]byte, uint64, error) {
	seq, _ := m.sequence()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i], _, _ = m.Get(ctx, k)
	}
	return out, seq, nil
}

// SetMany implements Store.
func (m *Memory) SetMany(ctx context.Context, entries []Entry, seq uint64) error {
	for _, e := range entries {
		if err := m.Set(ctx, e.Key, e.Val, e.TTL, e.Tags, seq); err != nil {
			return err
		}
	}
	return nil
}

// Invalidate implements Store.
func (m *Memory) Invalidate(_ context.Context, tags ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	for _, t := range tags {
		for key := range m.tags[t] {
			m.remove(key)
		}
		delete(m.tags, t)
		m.invalided[t] = m.seq
	}
	// Old invalidation marks only matter to computations in flight; keep
	// the map from growing without bound, refusing what those computations
	// would store.
	if len(m.invalided) > 100_000 {
		m.invalided, m.floor = map[string]uint64{}, m.seq
	}
	return nil
}

// remove deletes key and its tag memberships; m.mu is held.
func (m *Memory) remove(key string) {
	e, ok := m.entries[key]
	if !ok {
		return
	}
	delete(m.entries, key)
	for _, t := range e.tags {
		delete(m.tags[t], key)
		if len(m.tags[t]) == 0 {
			delete(m.tags, t)
		}
	}
}

// evict makes room: expired entries first, else an arbitrary tenth.
func (m *Memory) evict() {
	now := m.now()
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			m.remove(k)
		}
	}
	n := m.maxEntries / 10
	for k := range m.entries {
		if len(m.entries) < m.maxEntries && n <= 0 {
			return
		}
		m.remove(k)
		n--
	}
}
