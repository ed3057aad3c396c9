package resolver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/usergraph/usergraph/cache"
	"github.com/usergraph/usergraph/redistest"
	"github.com/usergraph/usergraph/seed"
	"github.com/usergraph/usergraph/server"
)

// A client that accepts gzip gets a query's answer compressed, the same
// answer once decoded; one that does not gets it as it is. A mutation's
// answer is never compressed: it can hold a secret beside text the client
// chose (BREACH).
func TestCompression_QueriesAreCompressedForClientsThatAcceptItMutationsNever(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := seed.Run(context.Background(), b.db.Pool, seed.Options{Users: 60, Groups: 5}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	h := server.New(server.Config{Compress: true, Limits: server.Limits{MaxAliases: 100}},
		b.cachingResolver(cache.NewMemory(0)), operatorAuthn{b.sessions}, b.db, log)
	send := func(query, acceptEncoding string) *httptest.ResponseRecorder {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": query})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.token)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec
	}

	page := `{ users(first: 50) { nodes { id email username displayName } } }`
	plain := send(page, "")
	declaresItsLength(t, plain, true)
	if ce := plain.Header().Get("Content-Encoding"); ce != "" {
		t.Errorf("no Accept-Encoding, but Content-Encoding %q", ce)
	}
	if !strings.Contains(plain.Body.String(), `"users"`) || strings.Contains(plain.Body.String(), `"errors"`) {
		t.Fatalf("the page failed: %s", plain.Body)
	}
	zipped := send(page, "gzip, deflate")
	declaresItsLength(t, zipped, false) // compressed as it is written
	if ce := zipped.Header().Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Accept-Encoding gzip, but Content-Encoding %q", ce)
	}
	if !strings.Contains(zipped.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("a compressed answer must vary by Accept-Encoding, Vary is %q", zipped.Header().Get("Vary"))
	}
	size := zipped.Body.Len()
	decoded := gunzip(t, zipped.Body)
	if !bytes.Equal(decoded, plain.Body.Bytes()) {
		t.Errorf("decoded answer differs from the plain one:\n%s\n%s", decoded, plain.Body)
	}
	if size*3 > len(decoded) {
		t.Errorf("compressed to %d bytes of %d: not worth it", size, len(decoded))
	}

	var fields strings.Builder
	for i := range 60 {
		fmt.Fprintf(&fields, " a%d: email", i)
	}
	mutation := `mutation { createUser(input: {email: "secretive@example.com", username: "secretive"}) { user {` + fields.String() + ` } } }`
	answer := send(mutation, "gzip")
	declaresItsLength(t, answer, true)
	if ce := answer.Header().Get("Content-Encoding"); ce != "" {
		t.Errorf("a mutation's answer was sent with Content-Encoding %q", ce)
	}
	if n := answer.Body.Len(); n < 1024 || !strings.Contains(answer.Body.String(), "secretive@example.com") {
		t.Errorf("the mutation's answer (%d bytes) must be large enough to be compressed, and succeed: %.200s", n, answer.Body)
	}
}

// A persisted query's cached answer goes to a client that accepts gzip
// gzipped, without running GraphQL, and decodes to the answer everyone
// else gets; after a change it is the new answer's encoding, at once.
func TestCompression_CachedAnswersAreSentGzippedAndFollowTheirChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := seed.Run(context.Background(), b.db.Pool, seed.Options{Users: 60, Groups: 5}); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t)
	h, direct := b.directInstance(t, cache.NewRedis(rs.Client(t), cache.RedisConfig{}, slog.New(slog.DiscardHandler)), 1_000_000)
	_, admin := b.userWithSession(t, "admin@example.com", "admin", "admin")
	q := `query Page { users(first: 50) { nodes { id username displayName } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": cache.QueryHash(q)}}
	gzipped := func() (decoded string, size int) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"extensions": ext})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Accept-Encoding", "br;q=1.0, gzip;q=0.8")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
			t.Fatalf("status %d, Content-Encoding %q, Vary %q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
		}
		declaresItsLength(t, rec, true) // gzipped once, beforehand
		size = rec.Body.Len()
		return string(gunzip(t, rec.Body)), size
	}

	send(t, h, "POST", admin, q, nil, ext).mustOK(t)
	full := send(t, h, "POST", admin, "", nil, ext).mustOK(t) // learned
	before := direct()
	for range 2 {
		decoded, size := gzipped()
		if decoded != full.body || size*2 > len(decoded) {
			t.Fatalf("gzipped to %d bytes, decoded to:\n%s\nwant:\n%s", size, decoded, full.body)
		}
	}
	if n := direct() - before; n != 2 {
		t.Fatalf("%v of 2 gzipped answers given directly", n)
	}

	// A GET (HTTP-cacheable) is compressed too, its ETag marked as the
	// gzipped representation's; revalidating with that ETag gets 304.
	get := func(header ...string) *httptest.ResponseRecorder {
		t.Helper()
		e, _ := json.Marshal(ext)
		req := httptest.NewRequest(http.MethodGet, "/graphql?extensions="+url.QueryEscape(string(e)), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	plainETag := get().Header().Get("ETag")
	zippedGet := get("Accept-Encoding", "gzip")
	declaresItsLength(t, zippedGet, false)
	if want := strings.TrimSuffix(plainETag, `"`) + `-gzip"`; plainETag == "" || zippedGet.Code != http.StatusOK ||
		zippedGet.Header().Get("Content-Encoding") != "gzip" || zippedGet.Header().Get("ETag") != want {
		t.Fatalf("GET with gzip: status %d, Content-Encoding %q, ETag %q (want %q)", zippedGet.Code,
			zippedGet.Header().Get("Content-Encoding"), zippedGet.Header().Get("ETag"), want)
	}
	if r := get("Accept-Encoding", "gzip", "If-None-Match", zippedGet.Header().Get("ETag")); r.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match with the gzipped ETag: %d", r.Code)
	}

	first := full.data["users"].(map[string]any)["nodes"].([]any)[0].(map[string]any)["id"]
	send(t, h, "POST", admin, `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Countess"}) { user { id } } }`, map[string]any{"id": first}, nil).mustOK(t)
	plain := send(t, h, "POST", admin, "", nil, ext).mustOK(t)
	if decoded, _ := gzipped(); !strings.Contains(decoded, "Countess") || decoded != plain.body {
		t.Fatalf("after a rename, gzipped: %s\nplain: %s", decoded, plain.body)
	}
}

// declaresItsLength fails the test if rec's Content-Length is not its
// body's length: net/http would cut such an answer short or fail it. With
// required, the answer must declare it (sent whole, not chunked); an answer
// compressed as it is written cannot, and must not declare the length it
// had before.
func declaresItsLength(t *testing.T, rec *httptest.ResponseRecorder, required bool) {
	t.Helper()
	cl := rec.Header().Get("Content-Length")
	if cl == "" && !required {
		return
	}
	if cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %q for a body of %d bytes", cl, rec.Body.Len())
	}
}

// gunzip decodes a gzipped body, failing the test if it is not one.
func gunzip(t *testing.T, body io.Reader) []byte {
	t.Helper()
	zr, err := gzip.NewReader(body)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
