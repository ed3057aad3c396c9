package playground_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
	"github.com/graph-gophers/graphql-go/relay"

	"github.com/usergraph/usergraph/playground"
	"github.com/usergraph/usergraph/playground/browsertest"
)

// browserTimeout bounds one browser run. It is a guard against a hung
// browser, not a performance assertion.
const browserTimeout = 90 * time.Second

// requiredCSP is the floor every response must meet; the handler may add to a
// directive (see contentSecurityPolicy) but not drop one.
var requiredCSP = []string{
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"font-src 'self' data:",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
}

// testBundle is what setup returns: a server with the Playground at "/" and
// a real GraphQL endpoint at "/graphql".
type testBundle struct {
	server *httptest.Server
}

// helloResolver answers the one field of the test schema.
type helloResolver struct{}

func (*helloResolver) Hello() string { return "hello from usergraph" }

func setup(t *testing.T, opts playground.Options) *testBundle {
	t.Helper()
	// A real GraphQL server, not a canned introspection answer, so that
	// GraphiQL's schema fetch and the query both go through a real executor.
	schema := graphql.MustParseSchema(`type Query { hello: String! }`, &helloResolver{})
	mux := http.NewServeMux()
	mux.Handle("/", playground.Handler(opts))
	mux.Handle("/graphql", &relay.Handler{Schema: schema})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testBundle{server: srv}
}

// get requests path from the bundle's server with optional header pairs.
func (b *testBundle) get(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.server.URL+path, nil)
	if err != nil {
		t.Fatalf("error creating request: %v", err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A plain transport: the default one would ask for gzip and undo it
	// behind our back, hiding what the handler sent.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("error requesting %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("error reading %s %s: %v", method, path, err)
	}
	return resp, body
}

func checkSecurityHeaders(t *testing.T, path string, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range requiredCSP {
		if !hasDirective(csp, d) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, d)
		}
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", path, got)
	}
}

// hasDirective reports whether csp has a directive that starts with want:
// "style-src 'self' 'nonce-x'" satisfies "style-src 'self'".
func hasDirective(csp, want string) bool {
	for d := range strings.SplitSeq(csp, ";") {
		d = strings.TrimSpace(d)
		if d == want || strings.HasPrefix(d, want+" ") {
			return true
		}
	}
	return false
}

var (
	assetRefRE = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	metaRE     = regexp.MustCompile(`<meta name="([^"]+)" content="([^"]*)">`)
)

func TestPageHasCSPAndSettings(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{Endpoint: "/api/graphql", Title: "Test Title", DefaultQuery: "{ hello }"})

	resp, body := b.get(t, http.MethodGet, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.StatusCode)
	}
	checkSecurityHeaders(t, "/", resp)
	if got, want := resp.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", got)
	}

	page := string(body)
	if strings.Contains(page, "<script>") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Errorf("page has inline script or an inline event handler:\n%s", page)
	}
	if !strings.Contains(page, "<title>Test Title</title>") {
		t.Errorf("page lacks the configured title:\n%s", page)
	}
	metas := make(map[string]string)
	for _, m := range metaRE.FindAllStringSubmatch(page, -1) {
		metas[m[1]] = html.UnescapeString(m[2])
	}
	if got := metas["graphql-endpoint"]; got != "/api/graphql" {
		t.Errorf("graphql-endpoint meta = %q, want /api/graphql", got)
	}
	if got := metas["graphql-default-query"]; got != "{ hello }" {
		t.Errorf("graphql-default-query meta = %q, want { hello }", got)
	}
	// The style nonce must be the one in this response's header, and fresh
	// for every response, or it protects nothing.
	nonce := metas["csp-style-nonce"]
	if nonce == "" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "'nonce-"+nonce+"'") {
		t.Errorf("csp-style-nonce meta %q is not in the CSP %q", nonce, resp.Header.Get("Content-Security-Policy"))
	}
	_, body2 := b.get(t, http.MethodGet, "/")
	if bytes.Contains(body2, []byte(nonce)) {
		t.Errorf("two responses share the style nonce %q", nonce)
	}
}

func TestPageDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})
	_, body := b.get(t, http.MethodGet, "/")
	for _, want := range []string{
		"<title>Usergraph</title>",
		`<meta name="graphql-endpoint" content="/graphql">`,
		"users(first: 5)",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
}

func TestReferencedAssetsAreServed(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})
	_, page := b.get(t, http.MethodGet, "/")

	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	var served []string
	for _, m := range assetRefRE.FindAllStringSubmatch(string(page), -1) {
		ref := html.UnescapeString(m[1])
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, "assets/") {
			t.Errorf("reference %q is not a relative path under assets/", ref)
			continue
		}
		path := "/" + ref
		resp, body := b.get(t, http.MethodGet, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
			continue
		}
		checkSecurityHeaders(t, path, resp)
		name, _, _ := strings.Cut(strings.TrimPrefix(ref, "assets/"), "?")
		ext := name[strings.LastIndex(name, "."):]
		if got := resp.Header.Get("Content-Type"); got != wantType[ext] {
			t.Errorf("GET %s: Content-Type = %q, want %q", path, got, wantType[ext])
		}
		if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") || !strings.Contains(got, "max-age=31536000") {
			t.Errorf("GET %s: Cache-Control = %q, want a year, immutable", path, got)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", path)
		}
		served = append(served, name)
	}
	want := []string{"graphiql.min.css", "playground.css", "react.production.min.js",
		"react-dom.production.min.js", "graphiql.min.js", "playground.js"}
	if strings.Join(served, " ") != strings.Join(want, " ") {
		t.Errorf("page loads %v, want %v in that order (React before GraphiQL before playground.js)", served, want)
	}
}

func TestAssetCachingAndCompression(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})

	// Without the version in the query, the bytes may change in the next
	// release: revalidate by ETag.
	resp, plain := b.get(t, http.MethodGet, "/assets/graphiql.min.js")
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("unversioned asset: Cache-Control = %q, want no-cache", got)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("unversioned asset has no ETag")
	}
	resp, _ = b.get(t, http.MethodGet, "/assets/graphiql.min.js", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with current ETag = %d, want 304", resp.StatusCode)
	}

	resp, gz := b.get(t, http.MethodGet, "/assets/graphiql.min.js", "Accept-Encoding", "br, gzip")
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", got)
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary = %q, want Accept-Encoding", resp.Header.Get("Vary"))
	}
	if resp.Header.Get("ETag") == etag {
		t.Errorf("gzipped and plain bodies share the ETag %s", etag)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("error opening gzipped body: %v", err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("error reading gzipped body: %v", err)
	}
	if !bytes.Equal(unzipped, plain) {
		t.Error("gzipped body does not decompress to the plain body")
	}
	t.Logf("graphiql.min.js: %d bytes, %d gzipped", len(plain), len(gz))

	resp, _ = b.get(t, http.MethodGet, "/assets/graphiql.min.js", "Accept-Encoding", "gzip;q=0")
	if got := resp.Header.Get("Content-Encoding"); got != "" {
		t.Errorf("gzip;q=0: Content-Encoding = %q, want none", got)
	}
}

// TestVendoredAssetsMatchVersions catches a vendored file edited by hand or
// copied from another version than VERSIONS.txt records.
func TestVendoredAssetsMatchVersions(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})
	f, err := os.Open("assets/VERSIONS.txt")
	if err != nil {
		t.Fatalf("error opening VERSIONS.txt: %v", err)
	}
	defer f.Close()

	lineRE := regexp.MustCompile(`^\s+(\S+) <- \S+ sha256:([0-9a-f]{64})$`)
	checked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		resp, body := b.get(t, http.MethodGet, "/assets/"+m[1])
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /assets/%s = %d, want 200", m[1], resp.StatusCode)
			continue
		}
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != m[2] {
			t.Errorf("assets/%s has sha256 %s, VERSIONS.txt says %s: run update-assets.sh", m[1], got, m[2])
		}
		checked++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("error reading VERSIONS.txt: %v", err)
	}
	if checked != 4 {
		t.Errorf("VERSIONS.txt lists %d vendored files, want 4", checked)
	}

	for _, name := range []string{"graphiql-LICENSE", "react-LICENSE", "react-dom-LICENSE"} {
		resp, body := b.get(t, http.MethodGet, "/assets/licenses/"+name)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("MIT License")) {
			t.Errorf("GET /assets/licenses/%s = %d, want 200 with the MIT license", name, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Errorf("GET /assets/licenses/%s: Content-Type = %q, want text/plain", name, got)
		}
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})
	for _, path := range []string{
		"/nope",
		"/index.html",
		"/assets/",
		"/assets/nope.js",
		"/assets/licenses",
		"/assets/%2e%2e/playground.go",
		"/assets/%2e%2e/index.html",
	} {
		resp, _ := b.get(t, http.MethodGet, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
		checkSecurityHeaders(t, path, resp)
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	t.Parallel()
	b := setup(t, playground.Options{})
	for _, path := range []string{"/", "/assets/playground.js"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			resp, _ := b.get(t, method, path)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow = %q, want GET, HEAD", method, path, got)
			}
			checkSecurityHeaders(t, path, resp)
		}
		resp, body := b.get(t, http.MethodHead, path)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s = %d with %d body bytes, want 200 and none", path, resp.StatusCode, len(body))
		}
	}
}

// requireChromium fails, rather than skips, a browser test on a machine
// without Chromium: a skipped test would let a broken Playground pass CI.
func requireChromium(t *testing.T) {
	t.Helper()
	if browsertest.ChromiumPath() == "" {
		t.Fatal("Chromium is not installed: install the Debian package chromium (apt-get install -y chromium) to run the Playground browser tests")
	}
}

func TestBrowserRunsQuery(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	b := setup(t, playground.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()

	start := time.Now()
	result, err := browsertest.RunQuery(ctx, b.server.URL+"/", "{ hello }")
	if err != nil {
		t.Fatalf("error running query in the browser (CSP violations and exceptions count): %v", err)
	}
	t.Logf("browser run took %v", time.Since(start))
	if !strings.Contains(result, "hello from usergraph") {
		t.Errorf("result pane shows %q, want it to contain %q", result, "hello from usergraph")
	}
}

// TestBrowserStyledUI proves that the CSP's two style loosenings are enough
// for the parts of GraphiQL that add styles at run time.
func TestBrowserStyledUI(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	b := setup(t, playground.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()

	if err := browsertest.OpenStyledUI(ctx, b.server.URL+"/"); err != nil {
		t.Fatalf("error opening GraphiQL's dialogs: %v", err)
	}
}

// TestBrowserReportsCSPViolations proves that the browser tests can fail: the
// same page served with the plain floor policy (no style nonce, no style
// attribute hashes) must be reported. It also shows that both loosenings are
// needed.
func TestBrowserReportsCSPViolations(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	strict := strings.Join(requiredCSP, "; ")
	h := playground.Handler(playground.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(overrideCSP{w, strict}, r)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()

	err := browsertest.OpenStyledUI(ctx, srv.URL+"/")
	if err == nil {
		t.Fatal("OpenStyledUI reported no problem under a policy that blocks GraphiQL's styles")
	}
	if !strings.Contains(err.Error(), "Content Security Policy") {
		t.Errorf("error = %v, want a Content Security Policy violation", err)
	}
	for _, want := range []string{"Applying inline style", "style-src"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

// overrideCSP replaces the handler's policy just before the header is sent.
type overrideCSP struct {
	http.ResponseWriter
	csp string
}

func (w overrideCSP) WriteHeader(code int) {
	w.Header().Set("Content-Security-Policy", w.csp)
	w.ResponseWriter.WriteHeader(code)
}

func (w overrideCSP) Write(p []byte) (int, error) {
	if w.Header().Get("Content-Security-Policy") != w.csp {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}
