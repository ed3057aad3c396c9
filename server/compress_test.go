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

// An answer's body is built once, and gzipped once when asked, then handed
// out as it is; each answer's body and gzip are its own, found by content
// as well as by address; answers too small or too large to keep are built
// per request (and left to the per-request compression).
func TestKeptAnswers_BuildAndCompressEachAnswerOnce(t *testing.T) {
	k := newKeptAnswers()
	a := bytes.Repeat([]byte(`{"name":"ada"},`), 200)
	a = append(append([]byte{'['}, a[:len(a)-1]...), ']')
	b := bytes.Replace(a, []byte("ada"), []byte("bob"), 1)
	body := k.body(a)
	first, ok := k.gzipped(a)
	again, _ := k.gzipped(bytes.Clone(a))
	other, _ := k.gzipped(b)
	same, _ := k.gzipped(a)
	if !ok || &first[0] != &again[0] || &first[0] != &same[0] {
		t.Fatalf("the same answer was compressed twice (ok %v)", ok)
	}
	if again := k.body(bytes.Clone(a)); &again[0] != &body[0] || &k.body(a)[0] != &body[0] {
		t.Fatal("the same answer's body was built twice")
	}
	// Bytes at the same address are the same answer only at the same length.
	head := a[:len(a)/2]
	half, _ := k.gzipped(head)
	for _, tc := range []struct {
		gz, data []byte
	}{{first, a}, {other, b}, {half, head}} {
		want := responseBody(&graphql.Response{Data: tc.data})
		if got := k.body(tc.data); !bytes.Equal(got, want) {
			t.Fatalf("body %.80s…, want %.80s…", got, want)
		}
		zr, err := gzip.NewReader(bytes.NewReader(tc.gz))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("decodes to %.80s…, want %.80s… (%v)", got, want, err)
		}
	}
	for _, data := range [][]byte{[]byte(`{"small":true}`), bytes.Repeat([]byte(" "), keptMaxAnswer+1)} {
		if _, ok := k.gzipped(data); ok {
			t.Errorf("an answer of %d bytes was kept", len(data))
		}
		if got, want := k.body(data), responseBody(&graphql.Response{Data: data}); !bytes.Equal(got, want) || &k.body(data)[0] == &got[0] {
			t.Errorf("an answer of %d bytes: body %.40s…, kept %v", len(data), got, &k.body(data)[0] == &got[0])
		}
	}
}
