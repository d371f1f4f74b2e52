package e2e

import (
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// sdkSpan is a span as the backend received it, with its resource.
type sdkSpan struct {
	span     ptrace.Span
	resource pcommon.Map
}

// TestFunctionSDKJoinsTheInvocation runs the example function instrumented with the
// OpenTelemetry Go SDK, which sends its spans and logs over OTLP/HTTP to the extension's
// local receiver. The extension reads its own exporter settings from the
// LAMBDA_OTEL_EXPORTER_OTLP_* family, leaving OTEL_EXPORTER_OTLP_ENDPOINT to the SDK, as a
// deployment would. The backend must get one trace per invocation, holding the platform's
// invocation span with the SDK's spans under it, and the SDK's log records in the same
// trace, each flushed with its invocation: they are at the backend once the invocation's
// REPORT is written, when every extension has asked for its next event.
func TestFunctionSDKJoinsTheInvocation(t *testing.T) {
	t.Parallel()
	b := newBackend(t, false)
	b.env = []string{"LAMBDA_OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "LAMBDA_OTEL_EXPORTER_OTLP_ENDPOINT=" + b.front.URL}
	port := strconv.Itoa(testbin.FreePort(t))
	const items, n = 2, 3
	var ids []string
	runEmulator(t, b, runConfig{
		events:   []string{`{"items":` + strconv.Itoa(items) + `}`},
		n:        n,
		function: bins.instrumented,
		env: []string{
			"LAMBDA_OTEL_RECEIVER=http:" + port,
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:" + port,
			"LAMBDA_OTEL_FLUSH=end",
		},
		flags: []string{"--tracing", "Active"},
		after: func(i int, h *runHandle, requestID string) {
			h.awaitReport(t, requestID)
			ids = append(ids, requestID)
			got := 0
			for _, s := range sdkSpans(b) {
				if id, _ := s.span.Attributes().Get("faas.invocation_id"); id.Str() == requestID {
					got++
				}
			}
			if got != 1+items {
				t.Errorf("invocation %d: when it was over the backend had %d of its SDK spans, want %d", i+1, got, 1+items)
			}
		},
	})

	all := sdkSpans(b)
	byID := map[pcommon.SpanID]sdkSpan{}
	for _, s := range all {
		byID[s.span.SpanID()] = s
	}
	logs := sdkLogs(b)
	if len(logs) != n {
		t.Errorf("the backend has %d SDK log records, want %d", len(logs), n)
	}
	traces := map[pcommon.TraceID]bool{}
	for _, id := range ids {
		var platform, handle *sdkSpan
		children := 0
		for i := range all {
			s := &all[i]
			if v, _ := s.span.Attributes().Get("faas.invocation_id"); v.Str() != id {
				continue
			}
			switch s.span.Name() {
			case "instrumented":
				platform = s
			case "handle":
				handle = s
			default:
				children++
			}
		}
		if platform == nil || handle == nil || children != items {
			t.Errorf("invocation %s: platform span %t, SDK root %t, %d children; want both and %d", id, platform != nil, handle != nil, children, items)
			continue
		}
		trace := platform.span.TraceID()
		traces[trace] = true
		if handle.span.TraceID() != trace || handle.span.ParentSpanID() != platform.span.SpanID() {
			t.Errorf("invocation %s: the SDK's root is in trace %s under %s, want trace %s under the platform span %s",
				id, handle.span.TraceID(), handle.span.ParentSpanID(), trace, platform.span.SpanID())
		}
		for _, s := range all {
			if v, _ := s.span.Attributes().Get("faas.invocation_id"); v.Str() == id && s.span.Name() != "instrumented" && s.span.Name() != "handle" &&
				(s.span.TraceID() != trace || s.span.ParentSpanID() != handle.span.SpanID()) {
				t.Errorf("invocation %s: %q is not under the SDK's root", id, s.span.Name())
			}
		}
		// The SDK's resource keeps its own attributes and gets the function's.
		res := handle.resource
		if v, _ := res.Get("service.name"); v.Str() != "instrumented" {
			t.Errorf("the SDK's service.name is %q, want the function's name for the SDK's unknown_service", v.Str())
		}
		if v, _ := res.Get("faas.name"); v.Str() != "instrumented" {
			t.Errorf("the SDK's resource has faas.name %q", v.Str())
		}
		if v, _ := res.Get("telemetry.sdk.language"); v.Str() != "go" {
			t.Errorf("the SDK's own telemetry.sdk.language is %q, want go", v.Str())
		}
		found := false
		for _, l := range logs {
			if l.TraceID() == trace && l.SpanID() == handle.span.SpanID() {
				found = true
				if v, _ := l.Attributes().Get("faas.invocation_id"); v.Str() != id {
					t.Errorf("invocation %s: its SDK log record has faas.invocation_id %q", id, v.Str())
				}
			}
		}
		if !found {
			t.Errorf("invocation %s: no SDK log record in its trace under the SDK's root", id)
		}
	}
	if len(traces) != n {
		t.Errorf("%d traces for %d invocations", len(traces), n)
	}
}

// sdkSpans returns the spans the backend received, with their resources.
func sdkSpans(b *backend) []sdkSpan {
	traces, _, _ := b.rcv.Received()
	var out []sdkSpan
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					out = append(out, sdkSpan{span: s, resource: rs.Resource().Attributes()})
				}
			}
		}
	}
	return out
}

// sdkLogs returns the log records of the SDK's scope.
func sdkLogs(b *backend) []plog.LogRecord {
	_, logs, _ := b.rcv.Received()
	var out []plog.LogRecord
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				if sl.Scope().Name() != "instrumented" {
					continue
				}
				for _, l := range sl.LogRecords().All() {
					out = append(out, l)
				}
			}
		}
	}
	return out
}
