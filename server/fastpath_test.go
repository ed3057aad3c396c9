package server

import (
	"bytes"
	"testing"
)

// A body is known only byte for byte, only up to persistedBodyMax, and a
// nil memory knows none.
func TestPersistedBodies_KnowOnlyTheBodiesAdded(t *testing.T) {
	p := newPersistedBodies()
	body := []byte(`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}},"variables":{"n":5}}`)
	p.add(body, "fp")
	if got := p.fingerprint(bytes.Clone(body)); got != "fp" {
		t.Fatalf("a body added: %q", got)
	}
	if got := p.fingerprint(bytes.Replace(body, []byte("5"), []byte("6"), 1)); got != "" {
		t.Fatalf("another body: %q", got)
	}
	big := bytes.Repeat([]byte(" "), persistedBodyMax+1)
	p.add(big, "big")
	if got := p.fingerprint(big); got != "" {
		t.Fatalf("a body over persistedBodyMax: %q", got)
	}
	var none *persistedBodies
	if got := none.fingerprint(body); got != "" {
		t.Fatalf("nil: %q", got)
	}
}
