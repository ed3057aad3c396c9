package resolver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/usergraph/usergraph/model"
)

// ErrorPresenter is the one place where errors become what a client sees.
// Application errors (model.Error) keep their code, message and field;
// errors gqlgen raises itself (parse, validation) keep theirs; anything else
// is logged with the request id and answered as INTERNAL with that id and no
// details, so SQL and Go internals never reach a client.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		var me *model.Error
		if errors.As(err, &me) {
			gerr.Message = me.Message
			gerr.Extensions = map[string]any{"code": string(me.Code)}
			if me.Field != "" {
				gerr.Extensions["field"] = me.Field
			}
			return gerr
		}
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Err == nil {
			// Raised by gqlgen or gqlparser from the document itself.
			if gerr.Extensions == nil {
				gerr.Extensions = map[string]any{}
			}
			if _, ok := gerr.Extensions["code"]; !ok {
				gerr.Extensions["code"] = string(model.CodeInvalid)
			}
			return gerr
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			log.WarnContext(ctx, "operation did not finish in time", "request_id", RequestID(ctx), "path", gerr.Path.String(), "err", err)
			gerr.Message = "the request took too long"
			gerr.Extensions = map[string]any{"code": "TIMEOUT", "requestId": RequestID(ctx)}
			return gerr
		}
		log.ErrorContext(ctx, "internal error", "request_id", RequestID(ctx), "path", gerr.Path.String(), "err", err)
		gerr.Message = "internal error"
		gerr.Extensions = map[string]any{"code": string(model.CodeInternal), "requestId": RequestID(ctx)}
		return gerr
	}
}

// Recover turns a panic in a resolver into an INTERNAL error, logged with its
// value; the process keeps serving.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "request_id", RequestID(ctx), "panic", fmt.Sprint(p))
		return errors.New("panic in resolver")
	}
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request's id, for logs and INTERNAL
// errors.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a random 16-hex-digit id.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
