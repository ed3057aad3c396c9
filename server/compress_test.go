package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// gzip is taken when named with a weight above zero, in any case and with
// any spacing; "*" and a zero weight are not taken, nor is HEAD.
func TestAcceptsGzip_FollowsTheWeights(t *testing.T) {
	for _, tc := range []struct {
		method, header string
		want           bool
	}{
		{"POST", "", false},
		{"POST", "gzip", true},
		{"POST", "gzip, deflate, br, zstd", true},
		{"POST", "br;q=1.0, GZIP ; Q=0.5", true},
		{"POST", "x-gzip", true},
		{"POST", "gzip;q=0", false},
		{"POST", "gzip;q=0.000", false},
		{"POST", "gzip;q=nonsense", false},
		{"POST", "*", false},
		{"POST", "deflate, br", false},
		{"POST", "gzipped", false},
		{"HEAD", "gzip", false},
	} {
		r := httptest.NewRequest(tc.method, "/graphql", nil)
		if tc.header != "" {
			r.Header.Set("Accept-Encoding", tc.header)
		}
		if got := acceptsGzip(r); got != tc.want {
			t.Errorf("%s with Accept-Encoding %q: acceptsGzip = %v, want %v", tc.method, tc.header, got, tc.want)
		}
	}
}

// An answer is compressed once and then handed out as it is; each answer
// decodes to its own body; answers too small or too large to keep are left
// to the per-request compression.
func TestZippedAnswers_CompressEachAnswerOnce(t *testing.T) {
	z := newZippedAnswers()
	a := bytes.Repeat([]byte(`{"name":"ada"},`), 200)
	a = append(append([]byte{'['}, a[:len(a)-1]...), ']')
	b := bytes.Replace(a, []byte("ada"), []byte("bob"), 1)
	first, ok := z.gzipped(a)
	again, _ := z.gzipped(bytes.Clone(a))
	other, _ := z.gzipped(b)
	same, _ := z.gzipped(a)
	if !ok || &first[0] != &again[0] || &first[0] != &same[0] {
		t.Fatalf("the same answer was compressed twice (ok %v)", ok)
	}
	// Bytes at the same address are the same answer only at the same length.
	head := a[:len(a)/2]
	half, _ := z.gzipped(head)
	for _, tc := range []struct {
		gz, data []byte
	}{{first, a}, {other, b}, {half, head}} {
		zr, err := gzip.NewReader(bytes.NewReader(tc.gz))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if want := responseBody(&graphql.Response{Data: tc.data}); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("decodes to %.80s…, want %.80s… (%v)", got, want, err)
		}
	}
	if _, ok := z.gzipped([]byte(`{"small":true}`)); ok {
		t.Error("an answer under compressMinSize was kept")
	}
	if _, ok := z.gzipped(make([]byte, zippedMaxAnswer+1)); ok {
		t.Error("an answer over zippedMaxAnswer was kept")
	}
}
