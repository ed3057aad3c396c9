package cache

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts cache hits, misses, errors and invalidations, and the
// Redis breaker's state. A nil *Metrics counts nothing.
type Metrics struct {
	lookups       *prometheus.CounterVec
	invalidations prometheus.Counter
	breaker       *prometheus.GaugeVec
	direct        prometheus.Counter
}

// NewMetrics registers the cache metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usergraph_cache_lookups_total",
			Help: "Cache lookups by cache (response, apq, entity) and result (hit, miss, error).",
		}, []string{"cache", "result"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usergraph_cache_invalidations_total",
			Help: "Invalidations sent for changed entities and lists.",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usergraph_cache_breaker_state",
			Help: "1 for the Redis circuit breaker's current state (closed, half-open, open).",
		}, []string{"state"}),
		direct: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usergraph_cache_direct_answers_total",
			Help: "Response cache hits answered without running GraphQL (persisted queries seen before; also counted as response hits).",
		}),
	}
	reg.MustRegister(m.lookups, m.invalidations, m.breaker, m.direct)
	m.BreakerState("closed")
	return m
}

func (m *Metrics) lookup(cache string, hit bool, err error) {
	if m == nil {
		return
	}
	result := "miss"
	switch {
	case err != nil:
		result = "error"
	case hit:
		result = "hit"
	}
	m.lookups.WithLabelValues(cache, result).Inc()
}

func (m *Metrics) answeredDirectly() {
	if m != nil {
		m.direct.Inc()
	}
}

func (m *Metrics) invalidated() {
	if m != nil {
		m.invalidations.Inc()
	}
}

// BreakerState records the breaker's new state (wire it to
// RedisConfig.OnStateChange).
func (m *Metrics) BreakerState(state string) {
	if m == nil {
		return
	}
	for _, s := range []string{"closed", "half-open", "open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.breaker.WithLabelValues(s).Set(v)
	}
}

// WithMetrics counts what passes through store: invalidations, and the
// hits and misses of GetMany, which the entity cache uses.
func WithMetrics(store Store, m *Metrics) Store {
	if m == nil {
		return store
	}
	return &counted{Store: store, m: m}
}

type counted struct {
	Store
	m *Metrics
}

func (c *counted) Invalidate(ctx context.Context, tags ...string) error {
	c.m.invalidated()
	return c.Store.Invalidate(ctx, tags...)
}

func (c *counted) GetMany(ctx context.Context, keys []string) ([][]byte, uint64, error) {
	vals, seq, err := c.Store.GetMany(ctx, keys)
	if err != nil {
		c.m.lookup("entity", false, err)
		return vals, seq, err
	}
	for _, v := range vals {
		c.m.lookup("entity", v != nil, nil)
	}
	return vals, seq, err
}
