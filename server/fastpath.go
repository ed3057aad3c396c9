package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/usergraph/usergraph/auth"
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
	// kept builds each answer's body once, and gzips it once for the
	// clients that accept gzip when compress is set.
	kept     *keptAnswers
	compress bool
	// viewers remembers who each session token (by hash) was on its last
	// request: the guess readAlong reads the answer for. A wrong or stale
	// guess costs a round trip, never a wrong answer.
	viewers *expirable.LRU[string, cacheViewer]
	// alongKeys remembers the key each plan's answer for each viewer is
	// read along under (a hash of the document, the variables and the
	// viewer, worth computing once).
	alongKeys *expirable.LRU[planFor, string]
	// bodies remembers the fingerprints of learned requests' bodies, so
	// that the gate need not decode them again (see gate).
	bodies *persistedBodies
}

// planFor is a plan's answer for one viewer.
type planFor struct {
	plan *cache.Plan
	who  cacheViewer
}

// cacheViewer names a viewer as the response cache's keys do.
type cacheViewer struct{ group, user string }

func newCachedPersisted(next http.Handler, responses *cache.Responses, limiter *ratelimit.Limiter, metrics *telemetry.Metrics, compress bool) *cachedPersisted {
	return &cachedPersisted{next: next, responses: responses, limiter: limiter, metrics: metrics,
		kept: newKeptAnswers(), compress: compress,
		plans:     expirable.NewLRU[string, *cache.Plan](5000, nil, planTTL),
		viewers:   expirable.NewLRU[string, cacheViewer](20_000, nil, planTTL),
		alongKeys: expirable.NewLRU[planFor, string](20_000, nil, planTTL),
		bodies:    newPersistedBodies()}
}

// persistedBodies remembers the POST bodies of persisted requests whose
// plan was learned, with their fingerprints: the same bytes decode to the
// same request, so the gate skips decoding them (a twentieth of a cached
// answer's CPU) and only the full path, if the request goes there, does.
// Only bodies up to persistedBodyMax are kept, at most as many as plans.
type persistedBodies struct {
	memo *contentMemo[string] // body → fingerprint
}

const persistedBodyMax = 1 << 10

func newPersistedBodies() *persistedBodies {
	return &persistedBodies{memo: newContentMemo[string](5000)}
}

// fingerprint is the fingerprint of a body remembered; "" for any other
// (or when p is nil).
func (p *persistedBodies) fingerprint(body []byte) string {
	if p == nil || len(body) > persistedBodyMax {
		return ""
	}
	fp, _ := p.memo.get(body)
	return fp
}

func (p *persistedBodies) add(body []byte, fingerprint string) {
	if len(body) <= persistedBodyMax {
		p.memo.add(bytes.Clone(body), fingerprint)
	}
}

// persistedRequest is what readAlong learned of a request before it was
// authenticated, for ServeHTTP after.
type persistedRequest struct {
	fingerprint string
	tokenHash   string          // "" for no token
	along       *auth.ReadAlong // nil when nothing is read along
	// What along was read for: the answer of plan to who.
	plan *cache.Plan
	who  cacheViewer
}

type persistedRequestKey struct{}

// readAlong goes before authentication. A persisted request with a plan
// and a session token seen before has its answer read in the round trip
// that checks the session, under the key of the viewer the token was last
// time. ServeHTTP uses that read only if it is under the key of the viewer
// the session turns out to be now; otherwise it reads again.
func (c *cachedPersisted) readAlong(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp, ok := fingerprint(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		pr := &persistedRequest{fingerprint: fp}
		if token := requestToken(r); token != "" {
			pr.tokenHash = string(auth.HashToken(token))
			plan, known := c.plans.Peek(fp)
			who, seen := c.viewers.Peek(pr.tokenHash)
			if known && seen {
				if raw, ok := c.alongKey(plan, who); ok {
					pr.along, pr.plan, pr.who = &auth.ReadAlong{Keys: []string{raw}}, plan, who
					ctx = auth.WithReadAlong(ctx, pr.along)
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, persistedRequestKey{}, pr)))
	})
}

// alongKey is the key plan's answer for who is read along under
// (Responses.ReadAlongKey), remembered. Whether the store may be read now is
// checked again when the read is used (Responses.CachedAlong).
func (c *cachedPersisted) alongKey(plan *cache.Plan, who cacheViewer) (string, bool) {
	k := planFor{plan, who}
	if raw, ok := c.alongKeys.Get(k); ok {
		return raw, true
	}
	raw, ok := c.responses.ReadAlongKey(plan, who.group, who.user)
	if ok {
		c.alongKeys.Add(k, raw)
	}
	return raw, ok
}

// ServeHTTP goes after authentication, behind readAlong, which has
// fingerprinted the request: one it did not mark is not a persisted
// request, and goes on to the full path.
func (c *cachedPersisted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	pr, _ := ctx.Value(persistedRequestKey{}).(*persistedRequest)
	if pr == nil {
		c.next.ServeHTTP(w, r)
		return
	}
	// Who the token is now: remembered for its next request, and what the
	// answer read along must have been read for.
	var now cacheViewer
	if pr.tokenHash != "" {
		now.group, now.user = c.responses.ViewerOf(ctx)
		if auth.ViewerFrom(ctx) != nil {
			if last, ok := c.viewers.Peek(pr.tokenHash); !ok || last != now {
				c.viewers.Add(pr.tokenHash, now)
			}
		}
	}
	out := cache.OutcomeFrom(ctx)
	if out == nil {
		ctx, out = cache.WithOutcome(ctx)
		r = r.WithContext(ctx)
	}
	// Charged first, as the full path charges before it runs anything: a
	// refusal or a miss then goes on to it, charged once already.
	if plan, ok := c.plans.Get(pr.fingerprint); ok && c.allowed(r, plan) {
		if data, ok := c.cached(ctx, plan, pr, now); ok {
			out.Policy, out.Result = plan.Policy, "hit"
			c.write(w, r, plan, data, start)
			return
		}
	}
	c.next.ServeHTTP(w, r)
	if out.Plan != nil {
		c.plans.Add(pr.fingerprint, out.Plan)
		if req, ok := ctx.Value(graphQLRequestKey{}).(*graphQLRequest); ok && req.fingerprint == "" {
			c.bodies.add(req.body, pr.fingerprint)
		}
	}
}

// cached is the plan's cached answer for the viewer who asks (now): from
// the read made along the session check when that read was for now, else
// read now.
func (c *cachedPersisted) cached(ctx context.Context, plan *cache.Plan, pr *persistedRequest, now cacheViewer) ([]byte, bool) {
	if along := pr.along; along != nil && along.Read && pr.plan == plan && pr.who == now {
		if data, hit, decided := c.responses.CachedAlong(ctx, along.Keys[0], along.Vals[0]); decided {
			return data, hit
		}
	}
	return c.responses.Cached(ctx, plan)
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
// and the same bytes (gzipped once for all who accept it), with the access
// log and metrics filled in.
func (c *cachedPersisted) write(w http.ResponseWriter, r *http.Request, plan *cache.Plan, data []byte, start time.Time) {
	noteOperation(r.Context(), plan.Name, plan.Type)
	w.Header().Set("Content-Type", gqlgenContentType(r.Header.Get("Accept")))
	if gz, ok := c.gzipped(r, data); ok {
		w.Header().Set("Content-Encoding", "gzip") // gzhttp then leaves it as it is
		writeBody(w, gz)
	} else {
		writeBody(w, c.kept.body(data))
	}
	c.metrics.ObserveOperation(plan.Name, plan.Type, "ok", time.Since(start))
}

// gzipped is the answer gzipped, when the client accepts that and the
// answer is one keptAnswers keeps. Only POST: a GET answer's ETag is the
// plain bytes' (cacheHeaders), which compression outside this handler then
// marks as gzipped, so a GET is compressed there, per request.
func (c *cachedPersisted) gzipped(r *http.Request, data []byte) ([]byte, bool) {
	if !c.compress || r.Method != http.MethodPost || !acceptsGzip(r) {
		return nil, false
	}
	return c.kept.gzipped(data)
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
		if ok && req.fingerprint != "" {
			return req.fingerprint, true
		}
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
