package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/go-viper/mapstructure/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// manifestMissTTL is how long a hash found in no manifest is not looked up
// again.
const manifestMissTTL = 30 * time.Second

// registeredTTL is how long an automatically registered query found in the
// shared store is answered from this process without asking the store
// again. A hash names one text forever, so the copy cannot be wrong; the
// TTL only keeps a registration that expired in the store from living on
// here much longer.
const registeredTTL = 10 * time.Minute

// Manifest holds the operations of clients' build-time manifests.
type Manifest interface {
	Operation(ctx context.Context, hash string) (string, bool, error)
}

// PersistedQueries resolves operation hashes to their text: first the
// manifest (PostgreSQL, with an in-process copy of the hot ones: a hash
// names one text forever, so the copy never goes stale), then the
// automatically registered queries in the shared store, which expire after
// a TTL and which any instance can have registered.
//
// It is the Cache behind gqlgen's AutomaticPersistedQuery extension.
type PersistedQueries struct {
	store    Store
	manifest Manifest
	hot      *lru.Cache[string, string]
	absent   *expirable.LRU[string, struct{}]
	known    *expirable.LRU[string, string] // registered queries seen in the store
	ttl      time.Duration
	log      *slog.Logger
	metrics  *Metrics
}

// NewPersistedQueries returns the resolver of hashes; ttl <= 0 means 24h.
func NewPersistedQueries(store Store, manifest Manifest, ttl time.Duration, m *Metrics, log *slog.Logger) *PersistedQueries {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	hot, _ := lru.New[string, string](2000)
	// Hashes not in the manifest are remembered briefly, so neither APQ
	// traffic nor a flood of made-up hashes costs a PostgreSQL lookup per
	// request; a newly imported manifest is seen within this time.
	absent := expirable.NewLRU[string, struct{}](10_000, nil, manifestMissTTL)
	// The hot registered queries are kept here too: each request then
	// costs no store round trip to turn its hash into the query.
	known := expirable.NewLRU[string, string](2000, nil, min(ttl, registeredTTL))
	return &PersistedQueries{store: store, manifest: manifest, hot: hot, absent: absent, known: known, ttl: ttl, log: log, metrics: m}
}

var _ graphql.Cache[string] = (*PersistedQueries)(nil)

// Get implements graphql.Cache.
func (p *PersistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	if q, ok := p.fromManifest(ctx, hash); ok {
		return q, true
	}
	if q, ok := p.known.Get(hash); ok {
		p.metrics.lookup("apq", true, nil)
		return q, true
	}
	q, ok, err := p.store.Get(ctx, "apq:"+hash)
	p.metrics.lookup("apq", ok, err)
	if err != nil || !ok {
		return "", false
	}
	p.known.Add(hash, string(q))
	return string(q), true
}

// Add implements graphql.Cache: a client registered a query with its hash
// (which the extension checked).
func (p *PersistedQueries) Add(ctx context.Context, hash, query string) {
	if err := p.store.Set(ctx, "apq:"+hash, []byte(query), p.ttl, nil, 0); err != nil {
		p.log.DebugContext(ctx, "could not register a persisted query", "err", err)
	}
	p.known.Add(hash, query)
}

func (p *PersistedQueries) fromManifest(ctx context.Context, hash string) (string, bool) {
	if q, ok := p.hot.Get(hash); ok {
		return q, true
	}
	if p.manifest == nil || p.absent.Contains(hash) {
		return "", false
	}
	q, ok, err := p.manifest.Operation(ctx, hash)
	if err != nil {
		p.log.WarnContext(ctx, "persisted query lookup failed", "err", err)
		return "", false
	}
	if ok {
		p.hot.Add(hash, q)
	} else {
		p.absent.Add(hash, struct{}{})
	}
	return q, ok
}

// PersistedOnly is a gqlgen extension for production clients with a
// build-time manifest: it accepts only operations named by the hash of a
// manifest entry, and refuses every other document. Use it instead of the
// AutomaticPersistedQuery extension.
type PersistedOnly struct {
	Queries *PersistedQueries
}

var _ interface {
	graphql.OperationParameterMutator
	graphql.HandlerExtension
} = PersistedOnly{}

// ExtensionName implements graphql.HandlerExtension.
func (PersistedOnly) ExtensionName() string { return "PersistedOnly" }

// Validate implements graphql.HandlerExtension.
func (p PersistedOnly) Validate(graphql.ExecutableSchema) error {
	if p.Queries == nil {
		return fmt.Errorf("PersistedOnly.Queries is nil")
	}
	return nil
}

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (p PersistedOnly) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	var ext struct {
		Sha256  string `mapstructure:"sha256Hash"`
		Version int64  `mapstructure:"version"`
	}
	if raw.Extensions["persistedQuery"] == nil || mapstructure.Decode(raw.Extensions["persistedQuery"], &ext) != nil || ext.Sha256 == "" {
		return codedError("this server accepts persisted queries only: send extensions.persistedQuery.sha256Hash", "PERSISTED_QUERY_REQUIRED")
	}
	if ext.Version != 1 {
		return codedError("unsupported persisted query version", "PERSISTED_QUERY_NOT_SUPPORTED")
	}
	q, ok := p.Queries.fromManifest(ctx, ext.Sha256)
	if !ok {
		return codedError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
	}
	if raw.Query != "" && raw.Query != q {
		return codedError("provided APQ hash does not match query", "PERSISTED_QUERY_HASH_MISMATCH")
	}
	raw.Query = q
	return nil
}

func codedError(msg, code string) *gqlerror.Error {
	err := gqlerror.Errorf("%s", msg)
	errcode.Set(err, code)
	return err
}

// QueryHash is the APQ hash of a document: hex SHA-256 of its text.
func QueryHash(query string) string {
	h := sha256.Sum256([]byte(query))
	return hex.EncodeToString(h[:])
}
