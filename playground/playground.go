// Package playground serves GraphiQL, the in-browser GraphQL IDE, with every
// file it needs embedded in the binary. Nothing is loaded from a CDN, so the
// Playground works offline and under a strict Content-Security-Policy, and what
// the browser runs is exactly the code that was reviewed and vendored (see
// assets/VERSIONS.txt and update-assets.sh).
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// files holds the page template and everything under assets/: the vendored
// GraphiQL and React bundles, their licenses (served too, so that every copy of
// the binary carries them), and our own playground.js and playground.css.
//
//go:embed index.html assets
var files embed.FS

// DefaultQuery is the query the editor shows on a first visit when
// Options.DefaultQuery is empty.
const DefaultQuery = `# Welcome to the Usergraph Playground.
{
  users(first: 5) {
    nodes {
      id
      username
    }
  }
}
`

// Options configures the Playground page.
type Options struct {
	// Endpoint is the URL the Playground posts GraphQL operations to. It must
	// be on the Playground's own origin: the page's CSP allows connect-src
	// 'self' only, and the fetcher sends cookies to the same origin only.
	// Defaults to "/graphql".
	Endpoint string

	// Title is the page title shown in the browser tab. Defaults to
	// "Usergraph".
	Title string

	// DefaultQuery is the query the editor shows on a first visit. GraphiQL
	// then keeps the user's own tabs in the browser's local storage, so a
	// change here shows only to new visitors. Defaults to DefaultQuery.
	DefaultQuery string
}

// WithDefaults returns a copy of o with every empty field set to its default.
func (o Options) WithDefaults() Options {
	if o.Endpoint == "" {
		o.Endpoint = "/graphql"
	}
	if o.Title == "" {
		o.Title = "Usergraph"
	}
	if o.DefaultQuery == "" {
		o.DefaultQuery = DefaultQuery
	}
	return o
}

// Handler serves the Playground page at "/" and its assets under "/assets/".
//
// The page refers to its assets by the relative path "assets/...", so the
// handler can be mounted under a prefix with http.StripPrefix, as long as the
// page is reached with a trailing slash ("/playground/", not "/playground").
//
// Every response carries a strict Content-Security-Policy and
// X-Content-Type-Options: nosniff. Assets are requested with their content
// hash in the query string and are then cached for a year; the page itself is
// revalidated on every visit. Assets are sent gzipped to clients that accept
// it. Only GET and HEAD are allowed; an unknown path is 404.
func Handler(opts Options) http.Handler {
	h := &handler{opts: opts.WithDefaults(), assets: loadAssets()}
	h.page = template.Must(template.New("index.html").
		Funcs(template.FuncMap{"asset": h.assetURL}).
		ParseFS(files, "index.html"))
	return h
}

type handler struct {
	opts   Options
	page   *template.Template
	assets map[string]*asset // by path under assets/, e.g. "licenses/react-LICENSE"
}

// asset is one embedded file with what is needed to serve it.
type asset struct {
	name        string
	body        []byte
	contentType string
	hash        string // hex SHA-256 of body: the ETag, and (shortened) the cache-busting version

	// The gzipped body is made on the first request that accepts it, so that a
	// server behind a compressing proxy never pays for it.
	gzipOnce sync.Once
	gzipped  []byte // nil when compression does not pay off
}

// loadAssets reads and hashes every embedded file under assets/. The files
// were embedded at build time, so failing to read one is a bug, not a runtime
// condition: it panics.
func loadAssets() map[string]*asset {
	assets := make(map[string]*asset)
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "assets/")
		assets[name] = &asset{
			name:        name,
			body:        body,
			contentType: contentType(name),
			hash:        hex.EncodeToString(sum[:]),
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("playground: error reading embedded assets: %v", err))
	}
	return assets
}

// contentType is set explicitly rather than by mime.TypeByExtension, whose
// answers depend on the host's /etc/mime.types: a browser refuses a script
// or stylesheet with the wrong type under nosniff.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".txt"), strings.HasSuffix(name, "-LICENSE"):
		return "text/plain; charset=utf-8"
	default:
		return "application/octet-stream"
	}
}

// assetURL is the template function that links an asset. The version in the
// query string changes whenever the file does, which is what makes it safe to
// cache assets as immutable.
func (h *handler) assetURL(name string) (string, error) {
	a, ok := h.assets[name]
	if !ok {
		return "", fmt.Errorf("no embedded asset %q", name)
	}
	return "assets/" + name + "?v=" + a.version(), nil
}

func (a *asset) version() string { return a.hash[:16] }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy(""))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The page has no outbound links worth a referrer; this keeps the
	// Playground's URL out of any request it might make elsewhere.
	w.Header().Set("Referrer-Policy", "no-referrer")

	var serve func(http.ResponseWriter, *http.Request)
	switch p := r.URL.Path; {
	case p == "/":
		serve = h.servePage
	case strings.HasPrefix(p, "/assets/"):
		// path.Clean guards against "/assets/../x"; the map lookup would
		// miss such a name anyway, but this keeps the intent obvious.
		a, ok := h.assets[strings.TrimPrefix(path.Clean(p), "/assets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve = a.serve
	default:
		http.NotFound(w, r)
		return
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	serve(w, r)
}

// contentSecurityPolicy returns the policy for every response. It starts from
// "nothing allowed" and adds only what the Playground uses; every source that
// is not 'self' was found by the browser test, which fails on any violation:
//
//   - script-src 'self': our own files; no inline script, no eval (the
//     GraphiQL 3 bundle needs neither).
//   - style-src 'self' plus, on the page only, a per-response nonce.
//     GraphiQL's dialogs (settings, short keys) lock page scrolling with
//     react-remove-scroll-bar, which injects a <style> element whose text
//     depends on the scrollbar width, so no hash can match it. playground.js
//     hands the nonce to that library (window.__webpack_nonce__), so that
//     element is allowed and any other injected <style> is not, which
//     'unsafe-inline' would not give.
//   - style-src-attr with 'unsafe-hashes': CodeMirror's jump-to-line prompt
//     (Alt-G) is built from HTML with two style attributes. Their hashes
//     admit exactly those two values; any other style attribute is blocked.
//     (Styles set from script through the CSSOM, as React does, are not
//     subject to CSP at all.)
//   - img-src and font-src data:: graphiql.min.css inlines its fonts as data:
//     URLs, and CodeMirror uses a data: image while dragging text.
//   - connect-src 'self': the fetcher posts to the same-origin endpoint.
//   - base-uri, form-action and frame-ancestors 'none': no <base> or form
//     tricks, and no framing (clickjacking) of a page that acts as the user.
func contentSecurityPolicy(styleNonce string) string {
	style := "style-src 'self'"
	if styleNonce != "" {
		style += " 'nonce-" + styleNonce + "'"
	}
	styleAttr := "style-src-attr 'unsafe-hashes'"
	for _, attr := range []string{"width: 10em", "color: #888"} {
		sum := sha256.Sum256([]byte(attr))
		styleAttr += " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; script-src 'self'; " + style + "; " + styleAttr + "; " +
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// pageData is what index.html is rendered with.
type pageData struct {
	Title        string
	Endpoint     string
	DefaultQuery string
	StyleNonce   string
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	nonce, err := newNonce()
	if err != nil {
		http.Error(w, "error creating CSP nonce", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	err = h.page.Execute(&buf, pageData{
		Title:        h.opts.Title,
		Endpoint:     h.opts.Endpoint,
		DefaultQuery: h.opts.DefaultQuery,
		StyleNonce:   nonce,
	})
	if err != nil {
		http.Error(w, "error rendering playground page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy(nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// no-cache, not a max-age: the page names the asset versions, so a
	// stale page would keep loading stale assets after an upgrade.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(buf.Bytes()))
}

// newNonce returns 128 random bits, base64-encoded as CSP expects.
func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("error reading random nonce: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Add("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == a.version() {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// Unversioned (or stale-versioned) URL: the bytes may change with
		// the next release, so the browser must revalidate by ETag.
		w.Header().Set("Cache-Control", "no-cache")
	}

	body, etag := a.body, `"`+a.hash+`"`
	if acceptsGzip(r) {
		if gz := a.gzip(); gz != nil {
			body, etag = gz, `"`+a.hash+`-gzip"`
			w.Header().Set("Content-Encoding", "gzip")
		}
	}
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// gzip returns the compressed body, or nil when compression saves less than a
// tenth, which is not worth a Content-Encoding.
func (a *asset) gzip() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return
		}
		if _, err := zw.Write(a.body); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(a.body)*9/10 {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip
// without q=0.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
