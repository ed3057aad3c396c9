// Package server is Usergraph's HTTP transport: the GraphQL endpoint, the
// Playground, health checks, and the middleware around them (request ids,
// access logs, per-operation dataloaders and statement counting).
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/db"
	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/playground"
	"github.com/usergraph/usergraph/ratelimit"
	"github.com/usergraph/usergraph/resolver"
	"github.com/usergraph/usergraph/telemetry"
)

// Config configures the HTTP handler.
type Config struct {
	// Playground serves GraphiQL at "/".
	Playground bool
	// Introspection allows schema introspection queries.
	Introspection bool
	// Debug adds per-operation figures (SQL statement count) to the
	// response's extensions.
	Debug bool
	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed (see clientIP). Empty: the peer address is the client.
	TrustedProxies []netip.Prefix
	// PersistedQueries resolves operation hashes (automatic persisted
	// queries and manifests); nil turns APQ off.
	PersistedQueries *cache.PersistedQueries
	// PersistedOnly refuses every document that is not in a manifest.
	PersistedOnly bool
	// Responses caches whole query responses; nil caches none.
	Responses *cache.Responses
	// Limits bound each request; zero fields take the defaults.
	Limits Limits
	// Suggestions lets validation errors say "Did you mean ...?", which
	// reveals field names; on with introspection in development.
	Suggestions bool
	// Compress encodes answers to queries with gzip or zstd for clients
	// that accept it (see compressQueries).
	Compress bool
	// RequestTimeout is the deadline of each request. Default 30s.
	RequestTimeout time.Duration
	// RateLimit charges each operation's cost to its client's budget; nil
	// turns rate limiting off.
	RateLimit *ratelimit.Limiter
	// Metrics records requests, operations and resolvers; nil records
	// nothing.
	Metrics *telemetry.Metrics
	// Tracing wraps the handler in OpenTelemetry's HTTP instrumentation and
	// traces operations and resolvers; off when false.
	Tracing bool
	// CORSOrigins are the browser origins (such as https://app.example.com)
	// allowed to call the API from another origin, with credentials. Empty:
	// same-origin only.
	CORSOrigins []string
	// Draining makes /readyz fail (while a shutdown waits for the load
	// balancer to notice); nil is never draining.
	Draining func() bool
	// Closing, once the listener is closed, ends each connection after its
	// next response (Connection: close), so that the balancer holds no idle
	// connection to reuse when the server shuts down; nil is never closing.
	Closing func() bool
	// WriteMarks, set when reads go to replicas, keeps a client's reads on
	// the primary for a moment after its mutations (read-your-writes).
	WriteMarks *cache.WriteMarks
}

// Pinger reports whether the database answers; /readyz uses it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Authenticator turns a session token into a viewer (nil: not a live
// session).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*auth.Viewer, error)
}

// New returns the HTTP handler of the whole API.
func New(cfg Config, res *resolver.Resolver, authn Authenticator, pinger Pinger, log *slog.Logger) http.Handler {
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: res, Directives: resolver.Directives(), Complexity: resolver.Complexity()}))
	// GET runs queries only (gqlgen refuses mutations over GET); there are
	// no multipart, form or websocket transports.
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postTransport{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(cfg.Limits.MaxTokens)
	srv.SetDisableSuggestion(!cfg.Suggestions)
	srv.Use(shapeLimits{l: cfg.Limits})
	srv.Use(extension.FixedComplexityLimit(cfg.Limits.MaxComplexity))
	if cfg.RateLimit != nil {
		srv.Use(costLimit{l: cfg.RateLimit}) // after the complexity, which prices it
	}
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	// Outermost: the access log, metrics and tracing see every operation,
	// also those the response cache answers.
	srv.Use(noteRequest{})
	if cfg.Metrics != nil {
		srv.Use(cfg.Metrics.GraphQL())
	}
	if cfg.Tracing {
		srv.Use(telemetry.GraphQLTracing())
	}
	switch {
	case cfg.PersistedOnly:
		srv.Use(cache.PersistedOnly{Queries: cfg.PersistedQueries})
	case cfg.PersistedQueries != nil:
		srv.Use(extension.AutomaticPersistedQuery{Cache: cfg.PersistedQueries})
	}
	if cfg.Responses != nil {
		srv.Use(cfg.Responses)
	}
	if cfg.WriteMarks != nil {
		srv.Use(primaryForMutations{marks: cfg.WriteMarks})
	}
	srv.SetErrorPresenter(resolver.ErrorPresenter(log))
	srv.SetRecoverFunc(resolver.Recover(log))
	srv.AroundOperations(res.OperationMiddleware)
	if cfg.Debug {
		srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
			resp := next(ctx)
			if resp != nil {
				if c := db.StatementCounterFrom(ctx); c != nil {
					if resp.Extensions == nil {
						resp.Extensions = map[string]any{}
					}
					resp.Extensions["sqlStatements"] = c.Count()
				}
			}
			return resp
		})
	}

	mux := http.NewServeMux()
	graphqlCORS := corsFor(cfg.CORSOrigins)
	var api http.Handler = srv
	var direct *cachedPersisted
	if cfg.Responses != nil && !cfg.Debug { // debug responses carry per-run extensions
		direct = newCachedPersisted(api, cfg.Responses, cfg.RateLimit, cfg.Metrics, cfg.Compress)
		api = direct
	}
	api = cacheHeaders(api)
	if cfg.WriteMarks != nil {
		api = readYourWrites(api, cfg.WriteMarks)
	}
	api = authenticate(api, authn, cfg.TrustedProxies, log)
	if direct != nil {
		api = direct.readAlong(api)
	}
	var known *persistedBodies
	if direct != nil {
		known = direct.bodies
	}
	endpoint := deadline(gate(rateLimitHeaders(api), cfg.Limits.MaxBody, known), cfg.RequestTimeout)
	if cfg.Compress {
		endpoint = compressQueries(endpoint)
	}
	mux.Handle("/graphql", graphqlCORS(endpoint))
	mux.Handle("GET /exports/{id}", authenticate(exportDownload(res, log), authn, cfg.TrustedProxies, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cfg.Draining != nil && cfg.Draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if err := pinger.Ping(ctx); err != nil {
			log.WarnContext(ctx, "not ready: database unreachable", "err", err)
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if cfg.Playground {
		mux.Handle("/", playground.Handler(playground.Options{Endpoint: "/graphql"}))
	}
	h := withRequest(mux, log, cfg.Metrics)
	if cfg.Closing != nil {
		h = closeWhenClosing(h, cfg.Closing)
	}
	if cfg.Tracing {
		h = telemetry.HTTPTracing(h)
	}
	return h
}

// closeWhenClosing asks for each connection to be closed after its response
// once the listener has closed. The balancer's next request then opens a
// new connection, which is refused and safe to retry on another instance,
// instead of reusing an idle connection that Shutdown might close while a
// request is being sent on it (a request already sent is never retried).
func closeWhenClosing(next http.Handler, closing func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closing() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// deadline bounds every request's work: resolvers and SQL see the context
// end and stop.
func deadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate resolves the session token of a request (a bearer token for
// mobile apps, the session cookie for browsers) into the viewer, and gives
// resolvers the client's address and a way to set the cookie. A missing or
// dead token is simply an anonymous request: the directives decide what an
// anonymous caller may do.
func authenticate(next http.Handler, authn Authenticator, trusted []netip.Prefix, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if token := requestToken(r); token != "" {
			v, err := authn.Authenticate(ctx, token)
			if err != nil {
				log.WarnContext(ctx, "session lookup failed; treating request as anonymous", "request_id", resolver.RequestID(ctx), "err", err)
			}
			if v != nil {
				ctx = auth.WithViewer(ctx, v)
			}
		}
		ctx = auth.WithRequest(ctx, &auth.Request{IP: clientIP(r, trusted), UserAgent: auth.ClipUserAgent(r.UserAgent()),
			SetCookie: func(c *http.Cookie) { http.SetCookie(w, c) }})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestToken is the session token a request carries: a bearer token, or
// else the session cookie; "" for none.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(auth.CookieName); err == nil {
		return c.Value
	}
	return ""
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequest gives every request an id (a well-formed X-Request-Id from a
// proxy is kept), a statement counter, and one access-log line.
func withRequest(next http.Handler, log *slog.Logger, m *telemetry.Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = resolver.NewRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := resolver.WithRequestID(r.Context(), id)
		ctx, counter := db.WithStatementCounter(ctx)
		info := &requestInfo{}
		ctx = context.WithValue(ctx, requestInfoKey{}, info)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		d := time.Since(start)
		path := r.URL.Path
		if strings.HasPrefix(path, "/exports/") {
			path = "/exports/{id}"
		} else if path != "/graphql" && path != "/healthz" && path != "/readyz" {
			path = "other"
		}
		m.ObserveRequest(path, r.Method, sw.status, d, counter.Count())
		if !log.Enabled(ctx, slog.LevelInfo) { // production logs at warn: build no line
			return
		}
		attrs := []slog.Attr{slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", d), slog.Int64("sql_statements", counter.Count())}
		if info.operation != "" {
			attrs = append(attrs, slog.String("operation", info.operation))
		}
		if info.viewer != "" {
			attrs = append(attrs, slog.String("viewer_id", info.viewer))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requestInfo collects what the access log reports beyond HTTP: the
// operation's name and the viewer (never a body, a token or a variable).
type requestInfo struct {
	operation string
	typ       string // query, mutation, ...; "" before the operation is known
	viewer    string
}

type requestInfoKey struct{}

// noteRequest is the gqlgen extension that fills in requestInfo.
type noteRequest struct{}

func (noteRequest) ExtensionName() string                   { return "AccessLog" }
func (noteRequest) Validate(graphql.ExecutableSchema) error { return nil }

func (noteRequest) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	name, typ := telemetry.OperationOf(graphql.GetOperationContext(ctx))
	noteOperation(ctx, name, typ)
	return next(ctx)
}

// noteOperation gives the access log the operation (its name, or its type
// when unnamed) and the viewer; the cached persisted-query path calls it
// for the operations it answers without gqlgen.
func noteOperation(ctx context.Context, name, typ string) {
	info, ok := ctx.Value(requestInfoKey{}).(*requestInfo)
	if !ok {
		return
	}
	info.operation, info.typ = name, typ
	if name == "" {
		info.operation = typ
	}
	if v := auth.ViewerFrom(ctx); v != nil {
		info.viewer = v.UserID.String()
	}
}
