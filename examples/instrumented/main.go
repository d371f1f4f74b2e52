// Command instrumented is an example function instrumented with the OpenTelemetry Go SDK.
// It sends its own spans and logs over OTLP/HTTP to the local receiver of the lambda-otel
// extension, at localhost:4318 unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise, and
// flushes them before it answers each invocation, since the environment may be frozen
// right after. Its spans continue the invocation's X-Ray trace, which the extension joins
// to the platform's invocation span. It is deployed as a custom runtime's bootstrap.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lambda-otel/lambda-otel/internal/xray"
)

// traceKey is the context key under which aws-lambda-go stores the invocation's
// X-Amzn-Trace-Id header.
const traceKey = "x-amzn-trace-id"

// flushTimeout bounds the flush at the end of an invocation: the local receiver answers
// in well under a millisecond.
const flushTimeout = 2 * time.Second

// Event is the invocation's payload.
type Event struct {
	// Items is how many child spans the handler makes, one per item.
	Items int `json:"items"`
}

// Response answers every invocation.
type Response struct {
	RequestID string `json:"requestId"`
	TraceID   string `json:"traceId"`
}

type function struct {
	tracer trace.Tracer
	logger otellog.Logger
	tp     *sdktrace.TracerProvider
	lp     *sdklog.LoggerProvider
}

func main() {
	ctx := context.Background()
	te, err := otlptracehttp.New(ctx)
	if err != nil {
		log.Fatalf("creating the trace exporter: %v", err)
	}
	le, err := otlploghttp.New(ctx)
	if err != nil {
		log.Fatalf("creating the log exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te))
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(le)))
	f := &function{tracer: tp.Tracer("instrumented"), logger: lp.Logger("instrumented"), tp: tp, lp: lp}
	lambda.Start(f.handle)
}

// invocationContext continues the invocation's X-Ray trace: its Root is the trace and its
// Parent the parent of the handler's span.
func invocationContext(ctx context.Context) context.Context {
	header, _ := ctx.Value(traceKey).(string)
	h := xray.Parse(header)
	if !h.HasTraceID || !h.HasParentID {
		return ctx
	}
	flags := trace.TraceFlags(0)
	if h.Sampled == xray.SamplingYes {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID(h.TraceID), SpanID: trace.SpanID(h.ParentID), TraceFlags: flags, Remote: true,
	}))
}

func (f *function) handle(ctx context.Context, ev Event) (Response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	requestID := ""
	if lc != nil {
		requestID = lc.AwsRequestID
	}
	sctx, span := f.tracer.Start(invocationContext(ctx), "handle", trace.WithSpanKind(trace.SpanKindServer))
	for i := range ev.Items {
		_, child := f.tracer.Start(sctx, fmt.Sprintf("item %d", i))
		child.SetAttributes(attribute.Int("item", i))
		child.End()
	}
	var rec otellog.Record
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(attribute.StringValue(fmt.Sprintf("handled %d items", ev.Items)))
	f.logger.Emit(sctx, rec)
	span.End()

	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := errors.Join(f.tp.ForceFlush(fctx), f.lp.ForceFlush(fctx)); err != nil {
		// Losing telemetry must not fail the invocation: say so and answer.
		log.Printf("flushing telemetry: %v", err)
	}
	return Response{RequestID: requestID, TraceID: span.SpanContext().TraceID().String()}, nil
}
