package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/usergraph/usergraph/graph"
	"github.com/usergraph/usergraph/resolver"
)

// Every answer of postTransport is gqlgen's own POST transport's: the same
// status, content type and JSON, for operations that run and for each kind
// of request error, under both response types. The schema's resolvers are
// never reached: __typename and failing requests need none.
func TestPostTransport_AnswersAsGqlgensPOST(t *testing.T) {
	t.Parallel()
	serve := func(tr graphql.Transport) http.Handler {
		srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &resolver.Resolver{}}))
		srv.AddTransport(tr)
		return gate(srv, 1<<20, nil)
	}
	ours, theirs := serve(postTransport{}), serve(transport.POST{})

	bodies := map[string]string{
		"runs":                 `{"query":"{ __typename t: __typename }"}`,
		"named operation":      `{"query":"query A { __typename } query B { b: __typename }","operationName":"B"}`,
		"does not parse":       `{"query":"{"}`,
		"does not validate":    `{"query":"{ noSuchField }"}`,
		"variable of the type": `{"query":"query($n: Int!) { __typename }","variables":{"n":"seven"}}`,
		"missing variable":     `{"query":"query($n: Int!) { __typename }"}`,
		"unknown operation":    `{"query":"query A { __typename }","operationName":"Z"}`,
		"two, no name":         `{"query":"query A { __typename } query B { __typename }"}`,
		"no query":             `{"variables":{}}`,
		"null query":           `{"query":null,"operationName":null,"variables":null,"extensions":null}`,
		"large number":         `{"query":"query($n: Int) { __typename }","variables":{"n":12345678901234567890}}`,
	}
	for name, body := range bodies {
		for _, accept := range []string{"", "application/json", "application/graphql-response+json"} {
			send := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			got, want := send(ours), send(theirs)
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%s (Accept %q): status %d, %q; gqlgen answers %d, %q", name, accept,
					got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
			var g, w any
			if err := json.Unmarshal(got.Body.Bytes(), &g); err != nil {
				t.Fatalf("%s: the answer is not JSON: %v\n%s", name, err, got.Body)
			}
			if err := json.Unmarshal(want.Body.Bytes(), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s (Accept %q):\n got %s\nwant %s", name, accept, got.Body, want.Body)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got.Body.Bytes()); err != nil || compact.String() != got.Body.String() {
				t.Errorf("%s: the answer is not compact JSON: %s", name, got.Body)
			}
		}
	}
}
