package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postTransport is gqlgen's POST transport (transport.POST) without two
// costs that grow with every request: it does not decode the body again,
// since the gate has decoded it already, and it sends the response's data as
// the executor wrote it, compact JSON, instead of through json.Marshal,
// which validates and re-compacts every byte of a json.RawMessage (5% of a
// 50-user page's CPU). Its answers are gqlgen's: the same content type,
// status codes and JSON, except that characters such as < and & in the data
// are no longer escaped as \u003c, which JSON does not require.
type postTransport struct{}

var _ graphql.Transport = postTransport{}

func (postTransport) Supports(r *http.Request) bool { return transport.POST{}.Supports(r) }

func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	req, ok := r.Context().Value(graphQLRequestKey{}).(*graphQLRequest)
	if !ok { // not through the gate
		transport.POST{}.Do(w, r, exec)
		return
	}
	// A body the gate knew was not decoded there (see persistedBodies). It
	// decoded before, so it decodes now.
	if err := req.decode(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeResponse(w, &graphql.Response{Errors: gqlerror.List{{Message: "the body could not be decoded",
			Extensions: map[string]any{"code": "BAD_REQUEST"}}}})
		return
	}
	ctx := r.Context()
	contentType := gqlgenContentType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	now := graphql.Now()
	params := &graphql.RawParams{
		Variables:  req.Variables,
		Extensions: req.Extensions,
		Headers:    r.Header,
		// The body was read and decoded before this transport ran.
		ReadTime: graphql.TraceTiming{Start: now, End: now},
	}
	if req.Query != nil {
		params.Query = *req.Query
	}
	if req.OperationName != nil {
		params.OperationName = *req.OperationName
	}
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		w.WriteHeader(requestErrorStatus(contentType, errs))
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

// requestErrorStatus is the status gqlgen's transports give an operation
// that fails before it runs: a protocol error (the document does not parse
// or validate, variables do not coerce) is 422 with application/json, which
// the gate then turns into the specification's 200, and 400 with
// application/graphql-response+json.
func requestErrorStatus(contentType string, errs gqlerror.List) int {
	if errcode.GetErrorKind(errs) != errcode.KindProtocol {
		return http.StatusOK
	}
	if contentType == "application/graphql-response+json" {
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

// writeResponse writes resp as json.Marshal would, field for field, with
// the data copied as it is.
func writeResponse(w http.ResponseWriter, resp *graphql.Response) {
	if b := responseBody(resp); b != nil {
		writeBody(w, b)
	}
}

// writeBody sends b in one Write with its length declared. Without a
// Content-Length, net/http chunks any body over its 2 KiB buffer, which
// costs the connection one more write for the closing chunk and the client
// the chunks' framing. Compression outside (gzhttp) drops the header when it
// compresses; a 304 drops it in net/http.
func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// responseBody is the JSON of resp as writeResponse sends it; nil only
// when it cannot be encoded.
func responseBody(resp *graphql.Response) []byte {
	if resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		// Incremental delivery, which no transport here offers.
		b, err := json.Marshal(resp)
		if err != nil {
			return nil
		}
		return b
	}
	buf := make([]byte, 0, len(resp.Data)+32)
	buf = append(buf, '{')
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			b = []byte(`[{"message":"internal system error"}]`)
		}
		buf = append(append(append(buf, `"errors":`...), b...), ',')
	}
	buf = append(buf, `"data":`...)
	if len(resp.Data) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, resp.Data...)
	}
	if len(resp.Extensions) > 0 {
		if b, err := json.Marshal(resp.Extensions); err == nil {
			buf = append(append(buf, `,"extensions":`...), b...)
		}
	}
	return append(buf, '}')
}
