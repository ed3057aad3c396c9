package resolver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The whole HTTP handler over random bodies, content types, Accept headers
// and methods: only 2xx and 4xx answers, in JSON, never a panic and never
// an internal detail.
func FuzzHandler(f *testing.F) {
	b := setupTB(f)
	seeds := []struct{ method, ctype, accept, body string }{
		{"POST", "application/json", "", `{"query":"{ users(first: 2) { nodes { id email } } }"}`},
		{"POST", "application/json", "application/graphql-response+json", `{"query":"query($n: Int!) { users(first: $n) { totalCount } }","variables":{"n":"x"}}`},
		{"POST", "application/json", "", `{"query":"mutation { createUser(input: {email: \"a@b.c\", username: \"fz\"}) { user { id } } }"}`},
		{"POST", "application/json", "", `{"query":"{ node(id: \"VXNlcjp4\") { id } }","variables":null,"extensions":{"persistedQuery":{"version":1}}}`},
		{"POST", "text/plain", "*/*", `{"query":"{ __typename }"}`},
		{"GET", "", "application/json", ""},
		{"POST", "application/json", "", `[{"query":"{ __typename }"}]`},
		{"POST", "application/json", "", `{"query": 1}`},
		{"DELETE", "application/json", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.ctype, s.accept, s.body)
	}
	f.Fuzz(func(t *testing.T, method, ctype, accept, body string) {
		if method != "GET" && method != "POST" && method != "PUT" && method != "DELETE" && method != "OPTIONS" {
			method = "POST"
		}
		target := "/graphql"
		var req *http.Request
		if method == "GET" {
			req = httptest.NewRequest(method, target+"?query="+url.QueryEscape(body), nil)
		} else {
			req = httptest.NewRequest(method, target, strings.NewReader(body))
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		req.Header.Set("Authorization", "Bearer "+b.token)
		rec := httptest.NewRecorder()
		b.handler.ServeHTTP(rec, req) // a panic fails the fuzz run
		if rec.Code >= 500 {
			t.Fatalf("%s %q %q %q: status %d: %s", method, ctype, accept, body, rec.Code, rec.Body.String())
		}
		if rec.Code != http.StatusNotModified && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: not JSON (%d): %s", method, body, rec.Code, rec.Body.String())
		}
		for _, internal := range []string{"SQLSTATE", "goroutine", ".go:", "runtime error"} {
			if strings.Contains(rec.Body.String(), internal) {
				t.Fatalf("%q reveals %s: %s", body, internal, rec.Body.String())
			}
		}
	})
}
