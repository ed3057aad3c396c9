package server

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/telemetry"
)

// planTTL bounds how long a learned plan is used without the full path
// seeing the request again. A persisted hash names one document forever, so
// a plan cannot go wrong; the TTL keeps an automatically registered query
// that expired in the store from being served here much longer (as the
// persisted-query cache does).
const planTTL = 10 * time.Minute

// cachedPersisted answers a persisted query whose response is in the
// response cache without running GraphQL: no parsing, validation,
// execution or re-encoding, one round trip to the cache. It learns what it
// needs (a cache.Plan) from the first run of the same request through the
// full path, keyed by everything in the request that can change the
// answer: the extensions (hash and version), the operation name and the
// variables, with numbers compared by their text. Who asks is part of the
// cache key, as on the full path.
//
// Everything else goes through next, as does a request it cannot answer:
// with query text, not learned yet, not cached for this viewer, one that
// must read fresh data, or one the rate limiter refuses (the full path then
// writes the refusal; a request is charged once either way).
type cachedPersisted struct {
	next      http.Handler
	responses *cache.Responses
	limiter   *ratelimit.Limiter
	metrics   *telemetry.Metrics
	plans     *expirable.LRU[string, *cache.Plan]
}

func newCachedPersisted(next http.Handler, responses *cache.Responses, limiter *ratelimit.Limiter, metrics *telemetry.Metrics) *cachedPersisted {
	return &cachedPersisted{next: next, responses: responses, limiter: limiter, metrics: metrics,
		plans: expirable.NewLRU[string, *cache.Plan](5000, nil, planTTL)}
}

func (c *cachedPersisted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	fp, ok := fingerprint(r)
	if !ok {
		c.next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	out := cache.OutcomeFrom(ctx)
	if out == nil {
		ctx, out = cache.WithOutcome(ctx)
		r = r.WithContext(ctx)
	}
	// Charged first, as the full path charges before it runs anything: a
	// refusal or a miss then goes on to it, charged once already.
	if plan, ok := c.plans.Get(fp); ok && c.allowed(r, plan) {
		if data, ok := c.responses.Cached(ctx, plan); ok {
			out.Policy, out.Result = plan.Policy, "hit"
			c.write(w, r, plan, data, start)
			return
		}
	}
	c.next.ServeHTTP(w, r)
	if out.Plan != nil {
		c.plans.Add(fp, out.Plan)
	}
}

// allowed charges the operation's cost as the full path would (which then
// does not charge it again).
func (c *cachedPersisted) allowed(r *http.Request, plan *cache.Plan) bool {
	if c.limiter == nil {
		return true
	}
	return !charge(r.Context(), c.limiter, plan.Complexity).Limited
}

// write sends the cached data as gqlgen would have: the same content type
// and the same bytes, with the access log and metrics filled in.
func (c *cachedPersisted) write(w http.ResponseWriter, r *http.Request, plan *cache.Plan, data []byte, start time.Time) {
	noteOperation(r.Context(), plan.Name, plan.Type)
	body := make([]byte, 0, len(data)+len(`{"data":}`))
	body = append(append(append(body, `{"data":`...), data...), '}')
	w.Header().Set("Content-Type", gqlgenContentType(r.Header.Get("Accept")))
	_, _ = w.Write(body)
	c.metrics.ObserveOperation(plan.Name, plan.Type, "ok", time.Since(start))
}

// fingerprint identifies a request that names its document by hash only
// (no query text), from the body the gate decoded or from a GET's query
// string; false for any other request.
func fingerprint(r *http.Request) (string, bool) {
	var opName string
	var vars, ext any
	switch r.Method {
	case http.MethodPost:
		req, ok := r.Context().Value(graphQLRequestKey{}).(*graphQLRequest)
		if !ok || req.Query != nil && *req.Query != "" || req.Extensions == nil {
			return "", false
		}
		if req.OperationName != nil {
			opName = *req.OperationName
		}
		vars, ext = req.Variables, req.Extensions
	case http.MethodGet:
		q := r.URL.Query()
		if q.Get("query") != "" || !q.Has("extensions") {
			return "", false
		}
		opName = q.Get("operationName")
		var err error
		if ext, err = decodeJSON(q.Get("extensions")); err != nil {
			return "", false
		}
		if v := q.Get("variables"); v != "" {
			if vars, err = decodeJSON(v); err != nil {
				return "", false
			}
		}
	default:
		return "", false
	}
	// Re-encoding sorts object keys, so key order and spacing do not count;
	// numbers are kept as written.
	e, err1 := json.Marshal(ext)
	v, err2 := json.Marshal(vars)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return r.Method + "\x00" + opName + "\x00" + string(e) + "\x00" + string(v), true
}

func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || !atEOF(dec) {
		return nil, errNotJSON
	}
	return v, nil
}

var errNotJSON = errors.New("not one JSON value")

// gqlgenContentType is the response type gqlgen's transports choose for an
// Accept header (the first type listed that they know; the gate has
// refused Accept headers that allow no JSON).
func gqlgenContentType(accept string) string {
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case "application/graphql-response+json":
			return mt
		}
	}
	return "application/graphql-response+json"
}
