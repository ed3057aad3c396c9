package auth_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usergraph/usergraph/auth"
)

func TestClipUserAgent_KeepsValidUTF8WithinTheLimit(t *testing.T) {
	long := strings.Repeat("a", auth.MaxUserAgent-1) + "é" // the 2-byte é straddles the limit
	got := auth.ClipUserAgent(long)
	if len(got) > auth.MaxUserAgent || !utf8.ValidString(got) || got != strings.Repeat("a", auth.MaxUserAgent-1) {
		t.Fatalf("clipped to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := auth.ClipUserAgent("curl/8.5"); got != "curl/8.5" {
		t.Fatalf("short agent changed: %q", got)
	}
}
