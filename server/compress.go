package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// etagGzipSuffix marks the ETag of a gzipped answer (gzhttp writes
// "-zstd" for zstd).
const etagGzipSuffix = "-gzip"

// compressMinSize is the smallest body worth compressing: below about a
// kilobyte the encoding's framing eats most of the saving, and the answer
// fits in a packet or two anyway.
const compressMinSize = 1024

// compressQueries encodes the answers to queries with gzip or zstd for
// clients that accept either (browsers and mobile HTTP stacks ask for it
// by default): a page of users is JSON of repeated field names and shrinks
// three- to fourfold (ids, being random, shrink least), which is what a
// phone on a slow link waits for.
//
// Only queries are compressed. A mutation's answer can carry a secret
// (login's session token) beside text the client chose, and a compressed
// secret beside chosen text leaks through the answer's length (BREACH).
// Queries never answer with secrets: tokens are stored hashed. A request
// refused before its operation was known is small and sent as it is.
//
// Compression runs at its fastest level: a GraphQL answer is made for one
// client and sent once, so the CPU spent on it is paid per request.
func compressQueries(next http.Handler) http.Handler {
	// A compressed answer's ETag (GET; see cacheHeaders) gets its coding
	// appended, as a representation's validator must differ by coding.
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMinSize), gzhttp.CompressionLevel(gzip.BestSpeed),
		gzhttp.SuffixETag(etagGzipSuffix))
	if err != nil { // only for invalid options, which are constant here
		panic(fmt.Sprintf("server: compression options: %v", err))
	}
	return wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&plainMutations{ResponseWriter: w, ctx: r.Context()}, r)
	}))
}

// plainMutations turns compression off, before the first byte of the
// answer, unless the operation turned out to be a query.
type plainMutations struct {
	http.ResponseWriter
	ctx     context.Context
	decided bool
}

func (p *plainMutations) decide() {
	if !p.decided {
		p.decided = true
		if info, ok := p.ctx.Value(requestInfoKey{}).(*requestInfo); !ok || info.typ != "query" {
			p.Header().Set(gzhttp.HeaderNoCompression, "1")
		}
	}
}

func (p *plainMutations) WriteHeader(status int) {
	p.decide()
	p.ResponseWriter.WriteHeader(status)
}

func (p *plainMutations) Write(b []byte) (int, error) {
	p.decide()
	return p.ResponseWriter.Write(b)
}

func (p *plainMutations) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// acceptsGzip reports whether the request's Accept-Encoding names gzip
// with a weight above zero (RFC 9110, 12.5.3). "*" is not taken for gzip,
// as gzhttp does not take it. HEAD is never compressed, as by gzhttp.
func acceptsGzip(r *http.Request) bool {
	if r.Method == http.MethodHead {
		return false
	}
	for _, h := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(h, ",") {
			coding, params, _ := strings.Cut(part, ";")
			if c := strings.ToLower(strings.TrimSpace(coding)); c != "gzip" && c != "x-gzip" {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(name, "q") {
					q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
					return err == nil && q > 0
				}
			}
			return true
		}
	}
	return false
}
