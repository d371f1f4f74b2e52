package convert

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

const (
	sdkHeader = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"
	sdkSpanID = "53995c3f42cd8ad8" // the platform's tracing.spanId
)

var (
	sdkTrace  = pcommon.TraceID{0x5f, 0x35, 0xae, 0x12, 0x0c, 0x0f, 0xec, 0x14, 0x1a, 0xb7, 0x7a, 0x00, 0xbc, 0x04, 0x7a, 0xa2}
	sdkParent = pcommon.SpanID{0x2b, 0xe9, 0x48, 0xa6, 0x25, 0x58, 0x8e, 0x32}
	platform  = pcommon.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
)

// sdkSpan is an SDK span for receivedSpans.
type sdkSpan struct {
	name           string
	trace          pcommon.TraceID
	id, parent     pcommon.SpanID
	start          time.Time
	invocationID   string // set by the SDK when not empty
	wantParent     pcommon.SpanID
	wantInvocation string
}

func receivedSpans(spans []sdkSpan, res map[string]string) telemetry.Received {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for k, v := range res {
		rs.Resource().Attributes().PutStr(k, v)
	}
	out := rs.ScopeSpans().AppendEmpty().Spans()
	for _, s := range spans {
		sp := out.AppendEmpty()
		sp.SetName(s.name)
		sp.SetTraceID(s.trace)
		sp.SetSpanID(s.id)
		sp.SetParentSpanID(s.parent)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		if s.invocationID != "" {
			sp.Attributes().PutStr(attrInvocationID, s.invocationID)
		}
	}
	return telemetry.Received{Traces: td, Items: len(spans)}
}

// TestSDKSpansJoinTheirInvocation checks the joining rules: the SDK's root (parent =
// the X-Ray Parent) goes under the platform span; faas.invocation_id is added by trace or
// by time, never replaced; spans of other traces outside any invocation are left alone.
func TestSDKSpansJoinTheirInvocation(t *testing.T) {
	c := newTestConverter()
	t0 := testStart.Add(time.Second)
	c.Invoked(Invocation{RequestID: "r1", TraceHeader: sdkHeader, At: t0})
	tc := &telemetry.TraceContext{SpanID: sdkSpanID, Type: "X-Amzn-Trace-Id", Value: sdkHeader}
	other := pcommon.TraceID{9}
	spans := []sdkSpan{
		{name: "root", trace: sdkTrace, id: pcommon.SpanID{1}, parent: sdkParent, start: t0.Add(time.Millisecond), wantParent: platform, wantInvocation: "r1"},
		{name: "child", trace: sdkTrace, id: pcommon.SpanID{2}, parent: pcommon.SpanID{1}, start: t0.Add(2 * time.Millisecond), wantParent: pcommon.SpanID{1}, wantInvocation: "r1"},
		{name: "own id kept", trace: sdkTrace, id: pcommon.SpanID{3}, parent: pcommon.SpanID{1}, start: t0, invocationID: "mine", wantParent: pcommon.SpanID{1}, wantInvocation: "mine"},
		{name: "another trace, during the invocation", trace: other, id: pcommon.SpanID{4}, start: t0.Add(5 * time.Millisecond), wantInvocation: "r1"},
		{name: "another trace, after it", trace: other, id: pcommon.SpanID{5}, start: t0.Add(time.Hour)},
		{name: "another trace, before it", trace: other, id: pcommon.SpanID{6}, start: t0.Add(-time.Second)},
	}
	c.AddReceived([]telemetry.Received{receivedSpans(spans, map[string]string{"service.name": "unknown_service:bootstrap", "faas.name": "sdk-name", "telemetry.sdk.name": "opentelemetry"})})
	if c.AwaitsSDK("r1") {
		t.Error("the root is in, yet the SDK is awaited")
	}
	c.Add([]telemetry.Event{
		ev(t0, &telemetry.Start{RequestID: "r1", Tracing: tc}),
		ev(t0.Add(10*time.Millisecond), &telemetry.RuntimeDone{RequestID: "r1", Status: telemetry.StatusSuccess, Tracing: tc}),
	})
	d := c.Take(t0.Add(time.Minute), Self{})
	seen := 0
	eachSpan(d.Traces, func(s ptrace.Span) {
		for _, want := range spans {
			if want.name != s.Name() {
				continue
			}
			seen++
			if s.ParentSpanID() != want.wantParent {
				t.Errorf("%s: parent %s, want %s", want.name, s.ParentSpanID(), want.wantParent)
			}
			id, _ := s.Attributes().Get(attrInvocationID)
			if id.Str() != want.wantInvocation {
				t.Errorf("%s: faas.invocation_id %q, want %q", want.name, id.Str(), want.wantInvocation)
			}
		}
	})
	if seen != len(spans) {
		t.Fatalf("%d of the %d SDK spans were taken", seen, len(spans))
	}
	res := d.Traces.ResourceSpans().At(d.Traces.ResourceSpans().Len() - 1).Resource().Attributes()
	for k, want := range map[string]string{
		"service.name":       "fn",            // the SDK's placeholder gives way
		"faas.name":          "sdk-name",      // the SDK's value stands
		"telemetry.sdk.name": "opentelemetry", // the SDK's, not the extension's
		"cloud.provider":     "aws",           // filled in
	} {
		if v, _ := res.Get(k); v.AsString() != want {
			t.Errorf("resource %s = %q, want %q", k, v.AsString(), want)
		}
	}
}

// TestSDKLogsJoinTheirInvocation checks that a log record without trace context made
// during an invocation gets the invocation's, and one with a trace of its own keeps it.
func TestSDKLogsJoinTheirInvocation(t *testing.T) {
	c := newTestConverter()
	t0 := testStart.Add(time.Second)
	tc := &telemetry.TraceContext{SpanID: sdkSpanID, Type: "X-Amzn-Trace-Id", Value: sdkHeader}
	c.Invoked(Invocation{RequestID: "r1", TraceHeader: sdkHeader, At: t0})
	c.Add([]telemetry.Event{ev(t0, &telemetry.Start{RequestID: "r1", Tracing: tc})})
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	bare := recs.AppendEmpty()
	bare.Body().SetStr("bare")
	bare.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
	traced := recs.AppendEmpty()
	traced.Body().SetStr("traced")
	traced.SetTraceID(sdkTrace)
	traced.SetSpanID(pcommon.SpanID{1})
	c.AddReceived([]telemetry.Received{{Logs: ld, Items: 2}})
	d := c.Take(t0.Add(time.Minute), Self{})
	got := map[string]plog.LogRecord{}
	eachLog(d.Logs, func(r plog.LogRecord) { got[r.Body().AsString()] = r })
	if r := got["bare"]; r.TraceID() != sdkTrace || r.SpanID() != platform {
		t.Errorf("the bare record has trace %s span %s, want the invocation's %s %s", r.TraceID(), r.SpanID(), sdkTrace, platform)
	}
	if r := got["traced"]; r.SpanID() != (pcommon.SpanID{1}) {
		t.Errorf("the traced record's span became %s", r.SpanID())
	}
	for name, r := range got {
		if id, _ := r.Attributes().Get(attrInvocationID); id.Str() != "r1" {
			t.Errorf("%s: faas.invocation_id %q", name, id.Str())
		}
	}
}

// TestAwaitsSDK checks when an invocation's SDK spans are expected.
func TestAwaitsSDK(t *testing.T) {
	c := newTestConverter()
	t0 := testStart.Add(time.Second)
	c.Invoked(Invocation{RequestID: "r1", TraceHeader: sdkHeader, At: t0})
	if c.AwaitsSDK("r1") {
		t.Error("awaited before the SDK ever sent a root span")
	}
	c.AddReceived([]telemetry.Received{receivedSpans([]sdkSpan{{name: "root", trace: sdkTrace, id: pcommon.SpanID{1}, parent: sdkParent}}, nil)})
	c.Invoked(Invocation{RequestID: "r2", TraceHeader: "Root=1-5f35ae12-0c0fec141ab77a00bc047aa3;Parent=2be948a625588e32;Sampled=1", At: t0.Add(time.Second)})
	c.Invoked(Invocation{RequestID: "unsampled", TraceHeader: "Root=1-5f35ae12-0c0fec141ab77a00bc047aa4;Parent=2be948a625588e32;Sampled=0", At: t0.Add(2 * time.Second)})
	if !c.AwaitsSDK("r2") {
		t.Error("a sampled invocation after one with an SDK root is not awaited")
	}
	if c.AwaitsSDK("unsampled") || c.AwaitsSDK("unknown") {
		t.Error("an unsampled or unknown invocation is awaited")
	}
	c.SDKLate()
	if c.AwaitsSDK("r2") {
		t.Error("still awaited after the SDK was late")
	}
}
