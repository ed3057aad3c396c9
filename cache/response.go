package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"reflect"
	"sort"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/telemetry"
)

// Tagged is implemented by results that name what they were read from
// (such as "User:<id>"); the response cache records a response under the
// tags of every result in it.
type Tagged interface {
	CacheTags() []string
}

// ResponseConfig wires the response cache to the application.
type ResponseConfig struct {
	// Viewer returns who is asking: group identifies everyone who may
	// share a public response (the same permissions, or anonymous); user
	// identifies the one user of a private response ("" when anonymous).
	Viewer func(ctx context.Context) (group, user string)
	// RootTags names the lists a root field reads (such as "users" for
	// users, user and node), so creating an entity invalidates them.
	RootTags func(field string) []string
	// Fresh, when it returns true, makes a request skip the lookup (the
	// response is computed, and still stored): a client that just wrote
	// must not get an entry a lagging replica's read may have filled.
	Fresh func(ctx context.Context) bool
	// Debug reports hit, miss or bypass in extensions.cache.
	Debug   bool
	Metrics *Metrics
	Log     *slog.Logger
}

// Responses caches whole query responses per operation, variables and
// viewer, as a gqlgen extension. Each cached response is recorded under the
// tags of everything it read, and Invalidate removes it when any of them
// changes.
type Responses struct {
	store    Store
	cfg      ResponseConfig
	policies *lru.Cache[string, Policy]
	schema   *ast.Schema
	// digests is the store, when it keeps each entry's digest (nil when
	// not); local, the answers kept in process and read by digest.
	digests digestKeyer
	local   *localAnswers
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = (*Responses)(nil)

// NewResponses returns the response cache over store.
func NewResponses(store Store, cfg ResponseConfig) *Responses {
	p, _ := lru.New[string, Policy](1000)
	digests, _ := store.(digestKeyer)
	return &Responses{store: store, cfg: cfg, policies: p, digests: digests, local: newLocalAnswers()}
}

// ExtensionName implements graphql.HandlerExtension.
func (*Responses) ExtensionName() string { return "ResponseCache" }

// Validate implements graphql.HandlerExtension; it keeps the schema, whose
// @cacheControl directives give the policies.
func (r *Responses) Validate(schema graphql.ExecutableSchema) error {
	r.schema = schema.Schema()
	return nil
}

type collectorKey struct{}

// collector gathers the tags of one operation's results.
type collector struct {
	mu   sync.Mutex
	tags map[string]struct{}
}

func (c *collector) add(tags ...string) {
	c.mu.Lock()
	for _, t := range tags {
		c.tags[t] = struct{}{}
	}
	c.mu.Unlock()
}

func (c *collector) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.tags))
	for t := range c.tags {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// InterceptField implements graphql.FieldInterceptor: it records the tags
// of each field's result while a cacheable response is being computed.
func (r *Responses) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	c, ok := ctx.Value(collectorKey{}).(*collector)
	if !ok || err != nil || res == nil {
		return res, err
	}
	fc := graphql.GetFieldContext(ctx)
	if fc != nil && fc.Object == "Query" && r.cfg.RootTags != nil {
		c.add(r.cfg.RootTags(fc.Field.Name)...)
	}
	switch v := res.(type) {
	case Tagged:
		c.add(v.CacheTags()...)
	default:
		// Lists of entities ([]model.Role, []*model.User, ...).
		rv := reflect.ValueOf(res)
		if rv.Kind() == reflect.Slice {
			for i := range rv.Len() {
				e := rv.Index(i)
				if e.Kind() != reflect.Pointer && e.CanAddr() {
					e = e.Addr()
				}
				if t, ok := e.Interface().(Tagged); ok {
					c.add(t.CacheTags()...)
				}
			}
		}
	}
	return res, err
}

// statusKey carries the outcome to the HTTP layer (Cache-Control, ETag).
type statusKey struct{}

// Outcome is what the response cache did with an operation, for the HTTP
// layer's headers.
type Outcome struct {
	Policy Policy
	Result string // hit, miss or bypass
	// Plan, set when the response was served from or stored in the cache,
	// lets the same request find it again without running GraphQL.
	Plan *Plan
}

// Plan is what finding an operation's cached response takes, learned from
// running it once: the HTTP layer keeps plans per persisted request and
// answers repeats straight from the cache (see Cached). Everything the
// full path checks (parsing, validation, limits, authorization, which
// depends only on the permissions in the key) gave the same answer for the
// same document, variables and permissions.
type Plan struct {
	Query, OperationName string
	// Name and Type name the operation in logs and metrics.
	Name, Type string
	// Variables is the canonical JSON of the coerced variables.
	Variables []byte
	Policy    Policy
	// Complexity is what the rate limiter charges.
	Complexity int
}

// Cached returns the cached response data of a planned operation for this
// viewer, or false when there is none (or the request must be fresh, or
// the store fails): the caller then runs the operation the usual way. A
// miss is not counted here: the full path that follows counts it.
func (r *Responses) Cached(ctx context.Context, p *Plan) ([]byte, bool) {
	// A debug response carries this run's figures; a fresh one reads none.
	if r.cfg.Debug || r.cfg.Fresh != nil && r.cfg.Fresh(ctx) {
		return nil, false
	}
	key := r.key(ctx, p.Query, p.OperationName, p.Variables, p.Policy)
	vals, _, err := r.store.GetMany(ctx, []string{key})
	if err != nil || vals[0] == nil {
		return nil, false
	}
	data := vals[0]
	// Kept for the requests that will read only its digest (CachedAlong).
	if dk, ok := r.digestKey(key); ok {
		data = r.local.keep(dk, data)
	}
	r.cfg.Metrics.lookup("response", true, nil)
	r.cfg.Metrics.answeredDirectly()
	return data, true
}

// digestKeyer is a Store that keeps each entry's digest beside it, under a
// key another client of the same server can read in a round trip of its
// own making.
type digestKeyer interface {
	digestKey(key string) (string, bool)
	readable() bool
}

func (r *Responses) digestKey(key string) (string, bool) {
	if r.digests == nil {
		return "", false
	}
	return r.digests.digestKey(key)
}

// ReadAlongKey returns the raw key under which the store keeps the digest
// of a planned operation's answer for the viewer group and user (as the
// Viewer function names them), for a read made along another one: see
// auth.ReadAlong. False when the store cannot be read that way, or must not
// be now.
func (r *Responses) ReadAlongKey(p *Plan, group, user string) (string, bool) {
	return r.digestKey(r.keyFor(p.Query, p.OperationName, p.Variables, p.Policy, group, user))
}

// CachedAlong is Cached for an answer whose digest was already read along
// another round trip: raw is the key it was read under, which ReadAlongKey
// gave for the plan and the viewer who asks (the caller makes sure of
// both), and val is what was there (nil: no answer). It decides when there
// is no answer, or when the answer with that digest is kept here (see
// localAnswers); otherwise decided is false and Cached must be asked.
func (r *Responses) CachedAlong(ctx context.Context, raw string, val []byte) (data []byte, hit, decided bool) {
	if r.cfg.Debug || r.cfg.Fresh != nil && r.cfg.Fresh(ctx) {
		return nil, false, true
	}
	// An invalidation that has not reached Redis since the read makes
	// what was read suspect.
	if r.digests == nil || !r.digests.readable() {
		return nil, false, false
	}
	if val == nil {
		return nil, false, true // the full path that follows counts the miss
	}
	data, ok := r.local.get(raw, val)
	if !ok {
		return nil, false, false
	}
	r.cfg.Metrics.lookup("response", true, nil)
	r.cfg.Metrics.answeredDirectly()
	return data, true, true
}

// WithOutcome gives the HTTP layer a place to learn the operation's
// policy; read it after the handler returns.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	o := &Outcome{}
	return context.WithValue(ctx, statusKey{}, o), o
}

// OutcomeFrom returns the Outcome WithOutcome put in ctx, or nil.
func OutcomeFrom(ctx context.Context) *Outcome {
	o, _ := ctx.Value(statusKey{}).(*Outcome)
	return o
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (r *Responses) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	// gqlgen also passes an operation refused before it ran (over the rate
	// limit, say) through the interceptors, its errors recorded: it must
	// get them, not a cached answer.
	if len(graphql.GetErrors(ctx)) > 0 {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	pol := r.policy(oc)
	out := OutcomeFrom(ctx)
	if out != nil {
		out.Policy = pol
	}
	result := "bypass"
	defer func() {
		if out != nil {
			out.Result = result
		}
	}()
	if pol.MaxAge <= 0 {
		return r.mark(next(ctx), result)
	}
	vars, _ := json.Marshal(oc.Variables) // map keys sorted: canonical
	key := r.key(ctx, oc.RawQuery, oc.OperationName, vars, pol)
	plan := func() *Plan {
		name, typ := telemetry.OperationOf(oc)
		return &Plan{Query: oc.RawQuery, OperationName: oc.OperationName, Name: name, Type: typ, Variables: vars, Policy: pol,
			Complexity: telemetry.ComplexityOf(oc)}
	}
	// One round trip reads the response and the invalidation sequence; a
	// request that must be fresh reads the sequence only (to store its
	// answer), not an entry it would not use.
	keys := []string{key}
	fresh := r.cfg.Fresh != nil && r.cfg.Fresh(ctx)
	if fresh {
		keys = nil
	}
	vals, seq, err := r.store.GetMany(ctx, keys)
	if !fresh {
		r.cfg.Metrics.lookup("response", err == nil && vals[0] != nil, err)
	}
	if err != nil {
		return r.mark(next(ctx), result)
	}
	if !fresh && vals[0] != nil {
		result = "hit"
		if out != nil {
			out.Plan = plan()
		}
		return r.mark(&graphql.Response{Data: vals[0]}, result)
	}
	c := &collector{tags: map[string]struct{}{}}
	resp := next(context.WithValue(ctx, collectorKey{}, c))
	if resp == nil || len(resp.Errors) > 0 {
		return r.mark(resp, result) // errors are never cached
	}
	result = "miss"
	err = r.store.Set(ctx, key, resp.Data, pol.MaxAge, c.list(), seq)
	switch {
	case err != nil && r.cfg.Log != nil:
		r.cfg.Log.DebugContext(ctx, "could not cache a response", "err", err)
	case err == nil && out != nil:
		out.Plan = plan()
	}
	return r.mark(resp, result)
}

func (r *Responses) mark(resp *graphql.Response, result string) *graphql.Response {
	if r.cfg.Debug && resp != nil {
		if resp.Extensions == nil {
			resp.Extensions = map[string]any{}
		}
		resp.Extensions["cache"] = map[string]any{"response": result}
	}
	return resp
}

// policy memoizes PolicyOf per document and operation.
func (r *Responses) policy(oc *graphql.OperationContext) Policy {
	if oc == nil || oc.Operation == nil {
		return Policy{}
	}
	k := oc.RawQuery + "\x00" + oc.OperationName
	if p, ok := r.policies.Get(k); ok {
		return p
	}
	p := PolicyOf(r.schema, oc.Operation)
	r.policies.Add(k, p)
	return p
}

// key identifies a response: the document, the operation, the variables
// and who may share it.
func (r *Responses) key(ctx context.Context, query, operationName string, vars []byte, pol Policy) string {
	group, user := r.ViewerOf(ctx)
	return r.keyFor(query, operationName, vars, pol, group, user)
}

// ViewerOf names who asks, as the cache keys do: the group of viewers who
// share answers and, for private answers, the user.
func (r *Responses) ViewerOf(ctx context.Context) (group, user string) {
	if r.cfg.Viewer == nil {
		return "anonymous", ""
	}
	return r.cfg.Viewer(ctx)
}

func (r *Responses) keyFor(query, operationName string, vars []byte, pol Policy, group, user string) string {
	h := sha256.New()
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write([]byte(operationName))
	h.Write([]byte{0})
	h.Write(vars)
	h.Write([]byte{0})
	h.Write([]byte(group))
	if pol.Scope == Private {
		h.Write([]byte{0})
		h.Write([]byte("user:" + user))
	}
	return "resp:" + hex.EncodeToString(h.Sum(nil))
}
