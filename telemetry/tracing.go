package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// StartTracing exports spans over OTLP/HTTP to endpoint (such as
// http://collector:4318) and makes them the process's tracer provider. The
// returned function flushes and stops the exporter. The standard
// OTEL_EXPORTER_OTLP_* variables (headers, TLS, timeouts) apply too.
func StartTracing(ctx context.Context, endpoint, version string) (func(context.Context) error, error) {
	// OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to
	// its /v1/traces.
	endpoint = strings.TrimSuffix(endpoint, "/")
	if !strings.HasSuffix(endpoint, "/v1/traces") {
		endpoint += "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("usergraph"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("error describing the tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}

// HTTPTracing is otelhttp's server instrumentation: a span per request,
// continuing the caller's trace.
func HTTPTracing(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	}))
}

// SQLTracer is otelpgx's pgx tracer: a span per statement (without its
// arguments, which may hold secrets).
func SQLTracer() pgx.QueryTracer { return otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName()) }

// GraphQLTracing traces each operation and each resolver field (plain
// struct fields are not worth a span) through gqlgen's extension hooks.
func GraphQLTracing() graphql.HandlerExtension {
	return gqlTracing{tracer: otel.Tracer("usergraph/graphql")}
}

type gqlTracing struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = gqlTracing{}

func (gqlTracing) ExtensionName() string                   { return "Tracing" }
func (gqlTracing) Validate(graphql.ExecutableSchema) error { return nil }

func (g gqlTracing) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	oc := graphql.GetOperationContext(ctx)
	name, typ := OperationOf(oc)
	ctx, span := g.tracer.Start(ctx, "graphql "+typ+" "+name, trace.WithAttributes(
		attribute.String("graphql.operation.name", name), attribute.String("graphql.operation.type", typ)))
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		span.SetStatus(codes.Error, resp.Errors[0].Message)
	}
	return resp
}

func (g gqlTracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver {
		return next(ctx)
	}
	ctx, span := g.tracer.Start(ctx, fc.Object+"."+fc.Field.Name, trace.WithAttributes(attribute.String("graphql.field.path", fc.Path().String())))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "resolver error")
	}
	return res, err
}
