package server

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP_ForwardedForCountsOnlyBehindTrustedProxies(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.5")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, want string
	}{
		{"direct client, header ignored", "203.0.113.7:5000", "1.2.3.4", "203.0.113.7"},
		{"behind a trusted proxy", "10.1.2.3:5000", "198.51.100.9", "198.51.100.9"},
		{"spoofed entries left of the real client are ignored", "10.1.2.3:5000", "6.6.6.6, 198.51.100.9", "198.51.100.9"},
		{"two trusted hops", "192.168.1.5:5000", "198.51.100.9, 10.9.9.9", "198.51.100.9"},
		{"malformed chain falls back to the peer", "10.1.2.3:5000", "not-an-ip", "10.1.2.3"},
		{"no header behind a proxy", "10.1.2.3:5000", "", "10.1.2.3"},
		{"IPv4-mapped IPv6 peer", "[::ffff:203.0.113.7]:5000", "", "203.0.113.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/graphql", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientIP(r, trusted); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("an invalid prefix must be refused")
	}
}
