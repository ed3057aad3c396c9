package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/usergraph/usergraph/auth"
	"github.com/usergraph/usergraph/cache"
)

// cacheHeaders gives GET responses of cacheable queries HTTP caching
// headers: Cache-Control with the operation's maxAge (public only for an
// anonymous caller of a public operation, so a CDN may keep it; private
// otherwise) and an ETag, answering If-None-Match with 304. Everything else
// is marked no-store. POST requests pass through untouched.
func cacheHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		ctx, out := cache.WithOutcome(r.Context())
		buf := &bufferedWriter{header: w.Header(), status: http.StatusOK}
		next.ServeHTTP(buf, r.WithContext(ctx))
		body := buf.body.Bytes()
		// A response with errors is never cached, so its result is "bypass".
		cacheable := buf.status == http.StatusOK && out.Policy.MaxAge > 0 && out.Result != "bypass"
		if !cacheable {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(buf.status)
			_, _ = w.Write(body)
			return
		}
		scope := "private"
		if out.Policy.Scope == cache.Public && auth.ViewerFrom(r.Context()) == nil {
			scope = "public"
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("Cache-Control", scope+", max-age="+strconv.Itoa(int(out.Policy.MaxAge.Seconds())))
		w.Header().Set("ETag", etag)
		w.Header().Add("Vary", "Authorization, Cookie")
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(body)
	})
}

// etagMatches compares as If-None-Match does (weakly). A compressed
// answer's ETag carries its coding (compressQueries) and names the same
// content, so it matches too: the client's stored copy is still good.
func etagMatches(header, etag string) bool {
	for _, m := range strings.Split(header, ",") {
		m = strings.TrimPrefix(strings.TrimSpace(m), "W/")
		for _, coding := range []string{etagGzipSuffix, "-zstd"} {
			if plain, ok := strings.CutSuffix(m, coding+`"`); ok {
				m = plain + `"`
			}
		}
		if m == etag || m == "*" {
			return true
		}
	}
	return false
}

// bufferedWriter holds a response so its ETag can be computed first.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(status int)      { b.status = status }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// CacheViewer identifies who may share a cached response: the group is
// everyone with the same permissions (authorization depends on nothing
// else), the user is the viewer alone.
func CacheViewer(ctx context.Context) (group, user string) {
	v := auth.ViewerFrom(ctx)
	if v == nil {
		return "anonymous", ""
	}
	perms := append([]string(nil), v.Permissions...)
	sort.Strings(perms)
	sum := sha256.Sum256([]byte(strings.Join(perms, ",")))
	return "perms:" + hex.EncodeToString(sum[:12]), v.UserID.String()
}
