package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// gate checks a request to /graphql before gqlgen sees it, following the
// GraphQL-over-HTTP specification: GET and POST only; POST bodies must be
// application/json (so a cross-site form or text/plain post, which a
// browser sends with the session cookie and no preflight, is refused); the
// Accept header must allow a JSON response; the body is read with a hard
// limit before it is decoded, must be one JSON object (no batching), and is
// never echoed back. gqlgen's own answers are then given conformant status
// codes: with application/json, a request error is still 200.
//
// A body known is the body of a persisted request seen before: it is not
// decoded again here (it decoded before, and the same bytes decode the
// same), and only the full path, if the request goes there, decodes it.
// known may be nil.
func gate(next http.Handler, maxBody int64, known *persistedBodies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respType := responseType(r.Header.Get("Accept"))
		if respType == "" {
			refuse(w, "application/json", http.StatusNotAcceptable, "NOT_ACCEPTABLE",
				"the Accept header must allow application/graphql-response+json or application/json")
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			if !isJSON(r.Header.Get("Content-Type")) {
				refuse(w, respType, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
					"POST requests must have Content-Type: application/json")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				refuse(w, respType, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
					"the request body is larger than "+strconv.FormatInt(maxBody, 10)+" bytes")
				return
			}
			if err != nil {
				refuse(w, respType, http.StatusBadRequest, "BAD_REQUEST", "the request body could not be read")
				return
			}
			trimmed := bytes.TrimLeft(body, " \t\r\n")
			if len(trimmed) > 0 && trimmed[0] == '[' {
				refuse(w, respType, http.StatusBadRequest, "BATCHING_NOT_SUPPORTED", "send one operation per request, not a batch")
				return
			}
			probe := &graphQLRequest{body: body}
			if probe.fingerprint = known.fingerprint(body); probe.fingerprint == "" {
				if len(trimmed) == 0 || trimmed[0] != '{' || probe.decode() != nil {
					refuse(w, respType, http.StatusBadRequest, "BAD_REQUEST",
						"the body must be a JSON object with query, operationName, variables and extensions")
					return
				}
			}
			r = r.WithContext(context.WithValue(r.Context(), graphQLRequestKey{}, probe))
			r.Body = io.NopCloser(bytes.NewReader(body))
		default:
			w.Header().Set("Allow", "GET, POST")
			refuse(w, respType, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET (queries) or POST")
			return
		}
		if respType == "application/json" {
			w = &okForRequestErrors{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

// graphQLRequest is a POST body as the gate read it, decoded unless it was
// known (see persistedBodies); the transport and the cached persisted-query
// path read it from the context instead of decoding again.
type graphQLRequest struct {
	Query         *string        `json:"query"`
	OperationName *string        `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`

	body []byte
	// fingerprint is set when the body is a persisted request's seen
	// before (persistedBodies); the fields above are then decoded only by
	// decode, when the full path needs them.
	fingerprint string
	decoded     bool
}

// decode decodes the body into the request's fields, once; an error when it
// is not one JSON object.
func (g *graphQLRequest) decode() error {
	if g.decoded {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(g.body))
	dec.UseNumber() // as gqlgen decodes: numbers keep their text
	if err := dec.Decode(g); err != nil {
		return err
	}
	if !atEOF(dec) {
		return errNotJSON
	}
	g.decoded = true
	return nil
}

type graphQLRequestKey struct{}

// isJSON reports whether a Content-Type names application/json (with
// parameters, such as a charset, or not).
func isJSON(contentType string) bool {
	if contentType == "application/json" { // as nearly every client sends it: no parsing
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// atEOF reports whether only white space follows the value dec decoded.
func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}

// responseType is the media type to answer with, from Accept; "" when
// Accept allows neither.
func responseType(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch mt {
		case "application/graphql-response+json":
			return mt
		case "application/json", "application/*", "*/*":
			return "application/json"
		}
	}
	return ""
}

// refuse answers a request turned away before GraphQL (by the gate, or the
// export download), in the GraphQL error shape.
func refuse(w http.ResponseWriter, contentType string, status int, code, msg string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": msg, "extensions": map[string]any{"code": code}}}})
}

// okForRequestErrors turns gqlgen's 422 (a document that does not parse or
// validate) into the 200 the specification asks for when the response is
// application/json; application/graphql-response+json keeps gqlgen's 400.
type okForRequestErrors struct {
	http.ResponseWriter
}

func (o *okForRequestErrors) WriteHeader(status int) {
	if status == http.StatusUnprocessableEntity {
		status = http.StatusOK
	}
	o.ResponseWriter.WriteHeader(status)
}

func (o *okForRequestErrors) Unwrap() http.ResponseWriter { return o.ResponseWriter }
