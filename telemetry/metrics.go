// Package telemetry owns what Usergraph tells its operators: Prometheus
// metrics for HTTP, GraphQL operations and resolvers, SQL, dataloaders,
// the connection pool and background jobs; OpenTelemetry tracing; and the
// handlers that expose them (with pprof behind a setting).
package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the process's Prometheus metrics on their own registry.
type Metrics struct {
	// Registry holds every metric, also those other packages register
	// (the cache's).
	Registry *prometheus.Registry

	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	operations     *prometheus.CounterVec
	opDuration     *prometheus.HistogramVec
	resolverTime   *prometheus.HistogramVec
	sqlDuration    *prometheus.HistogramVec
	statementsPer  prometheus.Histogram
	batchSize      *prometheus.HistogramVec
	jobs           *prometheus.CounterVec
	jobDuration    *prometheus.HistogramVec
	operationNames *boundedNames
}

// NewMetrics registers every metric on a new registry, with the Go runtime
// and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fast := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		Registry: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usergraph_http_requests_total",
			Help: "HTTP requests by path, method and status code."}, []string{"path", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_http_request_duration_seconds",
			Help: "HTTP request durations by path.", Buckets: fast}, []string{"path"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usergraph_graphql_operations_total",
			Help: "GraphQL operations by name (\"other\" past the first 200 names), type and outcome (ok, error)."},
			[]string{"operation", "type", "outcome"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_graphql_operation_duration_seconds",
			Help: "GraphQL operation durations by type.", Buckets: fast}, []string{"type"}),
		resolverTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_graphql_resolver_duration_seconds",
			Help: "Durations of resolver fields (not plain struct fields) by Type.field.", Buckets: fast}, []string{"field"}),
		sqlDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_sql_statement_duration_seconds",
			Help: "SQL statement durations by outcome.", Buckets: fast}, []string{"outcome"}),
		statementsPer: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "usergraph_sql_statements_per_request",
			Help: "SQL statements one HTTP request sent.", Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50}}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_dataloader_batch_size",
			Help: "Keys per dataloader batch by loader.", Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}}, []string{"loader"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usergraph_jobs_worked_total",
			Help: "Background job attempts by kind and outcome (ok, error)."}, []string{"kind", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usergraph_job_duration_seconds",
			Help: "Background job attempt durations by kind.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"kind"}),
		operationNames: &boundedNames{max: 200, seen: map[string]bool{}},
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.operations, m.opDuration, m.resolverTime, m.sqlDuration,
		m.statementsPer, m.batchSize, m.jobs, m.jobDuration)
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveRequest records one HTTP request.
func (m *Metrics) ObserveRequest(path, method string, status int, d time.Duration, statements int64) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(path, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(path).Observe(d.Seconds())
	if path == "/graphql" {
		m.statementsPer.Observe(float64(statements))
	}
}

// ObserveQuery records one SQL statement (wire it to db.Config).
func (m *Metrics) ObserveQuery(d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.sqlDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveBatch records one dataloader batch.
func (m *Metrics) ObserveBatch(loader string, keys int) {
	if m != nil {
		m.batchSize.WithLabelValues(loader).Observe(float64(keys))
	}
}

// ObserveJob records one job attempt.
func (m *Metrics) ObserveJob(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.jobs.WithLabelValues(kind, outcome).Inc()
	m.jobDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// WatchPool exports the connection pool's statistics.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	m.Registry.MustRegister(poolCollector{pool: pool})
}

// boundedNames keeps label values from client-chosen operation names to a
// fixed number, so a client cannot grow the metrics without bound.
type boundedNames struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func (b *boundedNames) label(name string) string {
	if name == "" {
		return "anonymous"
	}
	if len(name) > 64 {
		return "other"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[name] {
		return name
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[name] = true
	return name
}

// GraphQL is the gqlgen extension that measures operations and resolvers.
func (m *Metrics) GraphQL() graphql.HandlerExtension { return gqlMetrics{m: m} }

type gqlMetrics struct{ m *Metrics }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = gqlMetrics{}

func (gqlMetrics) ExtensionName() string                   { return "Metrics" }
func (gqlMetrics) Validate(graphql.ExecutableSchema) error { return nil }

func (g gqlMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	name, typ := OperationOf(graphql.GetOperationContext(ctx))
	outcome := "ok"
	if resp == nil || len(resp.Errors) > 0 {
		outcome = "error"
	}
	g.m.ObserveOperation(name, typ, outcome, time.Since(start))
	return resp
}

// ObserveOperation records one GraphQL operation (outcome "ok" or
// "error"); the HTTP layer calls it for operations it answers from the
// response cache without running them.
func (m *Metrics) ObserveOperation(name, typ, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.operations.WithLabelValues(m.operationNames.label(name), typ, outcome).Inc()
	m.opDuration.WithLabelValues(typ).Observe(d.Seconds())
}

func (g gqlMetrics) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver {
		return next(ctx)
	}
	start := time.Now()
	res, err := next(ctx)
	g.m.resolverTime.WithLabelValues(fc.Object + "." + fc.Field.Name).Observe(time.Since(start).Seconds())
	return res, err
}

type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolTotal    = prometheus.NewDesc("usergraph_db_pool_connections", "Connections in the pool by state.", []string{"state"}, nil)
	poolMax      = prometheus.NewDesc("usergraph_db_pool_max_connections", "The pool's size limit.", nil, nil)
	poolAcquires = prometheus.NewDesc("usergraph_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaits    = prometheus.NewDesc("usergraph_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaitTime = prometheus.NewDesc("usergraph_db_pool_acquire_wait_seconds_total", "Time spent waiting for connections.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotal, poolMax, poolAcquires, poolWaits, poolWaitTime} {
		ch <- d
	}
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitTime, prometheus.CounterValue, s.AcquireDuration().Seconds())
}

// ComplexityOf is an operation's complexity as gqlgen's complexity limit
// computed it, or 1 when the limit did not run. The rate limiter prices an
// operation by it, and the response cache remembers it for the requests it
// answers without running them.
func ComplexityOf(oc *graphql.OperationContext) int {
	if s, ok := oc.Stats.GetExtension("ComplexityLimit").(*extension.ComplexityStats); ok {
		return s.Complexity
	}
	return 1
}

// OperationOf names an operation: the name in the document (or the
// request's operationName), and its type.
func OperationOf(oc *graphql.OperationContext) (name, typ string) {
	if oc == nil {
		return "", "unknown"
	}
	name, typ = oc.OperationName, "unknown"
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	return name, typ
}
