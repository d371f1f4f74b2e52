package sink

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/lambda-otel/lambda-otel/exporters"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a sink on loopback for the test's lifetime.
func start(t *testing.T, opts Options) *Sink {
	t.Helper()
	s, err := Start(t.Context(), "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

// exporter returns the project's OTLP exporter aimed at s.
func exporter(t *testing.T, s *Sink, p exporters.Protocol, gzip bool) *exporters.OTLP {
	t.Helper()
	var targets [len(exporters.Signals)]exporters.Target
	for _, sig := range exporters.Signals {
		targets[sig] = exporters.Target{Protocol: p, URL: s.Endpoint() + "/v1/" + sig.String(), Gzip: gzip, Timeout: 5 * time.Second}
	}
	e := exporters.NewOTLP(targets)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// send exports reqs in order, each of which must be accepted whole.
func send(t *testing.T, e *exporters.OTLP, reqs []exporters.Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, r := range reqs {
		if res := e.Export(ctx, r); res.Err != nil || res.Accepted != r.Items() {
			t.Fatalf("exporting %s: %+v", r.Signal(), res)
		}
	}
}

// fixture is a short run of a function as the extension would export it, one pdata value
// per request.
type fixture struct {
	traces  []ptrace.Traces
	logs    []plog.Logs
	metrics []pmetric.Metrics
}

// requests are the fixture's requests: traces, then logs, then metrics.
func (f fixture) requests() []exporters.Request {
	var reqs []exporters.Request
	for _, td := range f.traces {
		reqs = append(reqs, exporters.TracesRequest(td))
	}
	for _, ld := range f.logs {
		reqs = append(reqs, exporters.LogsRequest(ld))
	}
	for _, md := range f.metrics {
		reqs = append(reqs, exporters.MetricsRequest(md))
	}
	return reqs
}

// merged is what a sink should hold once sent the fixture.
func (f fixture) merged() (ptrace.Traces, plog.Logs, pmetric.Metrics) {
	td, ld, md := ptrace.NewTraces(), plog.NewLogs(), pmetric.NewMetrics()
	for _, x := range f.traces {
		for _, rs := range x.ResourceSpans().All() {
			rs.CopyTo(td.ResourceSpans().AppendEmpty())
		}
	}
	for _, x := range f.logs {
		for _, rl := range x.ResourceLogs().All() {
			rl.CopyTo(ld.ResourceLogs().AppendEmpty())
		}
	}
	for _, x := range f.metrics {
		for _, rm := range x.ResourceMetrics().All() {
			rm.CopyTo(md.ResourceMetrics().AppendEmpty())
		}
	}
	return td, ld, md
}

// newFixture builds, with fixed ids and times, an init, an invocation calling an API, and
// a failed invocation; their logs and one outside any span; and metrics in two requests.
func newFixture(t *testing.T) fixture {
	t.Helper()
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	at := func(ms float64) pcommon.Timestamp {
		return pcommon.NewTimestampFromTime(base.Add(time.Duration(ms * float64(time.Millisecond))))
	}
	id := func(dst []byte, s string) {
		if len(s) != 2*len(dst) {
			t.Fatalf("id %q is not %d bytes", s, len(dst))
		}
		if _, err := hex.Decode(dst, []byte(s)); err != nil {
			t.Fatalf("id %q: %v", s, err)
		}
	}
	traceID := func(s string) (v pcommon.TraceID) { id(v[:], s); return v }
	spanID := func(s string) (v pcommon.SpanID) {
		if s != "" {
			id(v[:], s)
		}
		return v
	}
	resource := func(r pcommon.Resource) {
		r.Attributes().PutStr("service.name", "hello-fn")
		r.Attributes().PutStr("faas.name", "hello-fn")
		r.Attributes().PutStr("cloud.region", "us-east-1")
	}
	const (
		initTrace, initSpan   = "5f35ae120c0fec141ab77a00bc047aa2", "1f0e3dd21a0e4b7a"
		invoke1Trace, invoke1 = "6d68ca910c3e4e579b8a1d2f3a4b5c6d", "8a3c60f7d188f8fa"
		xrayParent, apiCall   = "53995c3f42cd8ad8", "c2b7e5d43f1a0968"
		invoke2Trace, invoke2 = "a4c1e7f2b9d04c3e8f1a2b3c4d5e6f70", "3e9d7c1b5a2f4e60"
		invokedARN            = "arn:aws:lambda:us-east-1:123456789012:function:hello-fn:live"
	)

	newSpans := func() (ptrace.Traces, ptrace.SpanSlice) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		resource(rs.Resource())
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("lambda-otel")
		return td, ss.Spans()
	}
	span := func(spans ptrace.SpanSlice, trace, id, parent, name string, kind ptrace.SpanKind, start, end float64) ptrace.Span {
		s := spans.AppendEmpty()
		s.SetTraceID(traceID(trace))
		s.SetSpanID(spanID(id))
		s.SetParentSpanID(spanID(parent))
		s.SetName(name)
		s.SetKind(kind)
		s.SetStartTimestamp(at(start))
		s.SetEndTimestamp(at(end))
		return s
	}

	td1, spans := newSpans()
	s := span(spans, initTrace, initSpan, "", "init", ptrace.SpanKindServer, 10, 133.4)
	s.Status().SetCode(ptrace.StatusCodeOk)
	s.Attributes().PutStr("aws.lambda.initialization_type", "on-demand")
	s.Attributes().PutStr("aws.lambda.runtime_version", "python:3.13.v31")
	s.Attributes().PutStr("aws.lambda.status", "success")
	s = span(spans, invoke1Trace, invoke1, xrayParent, "hello-fn", ptrace.SpanKindServer, 140, 155.74)
	s.Status().SetCode(ptrace.StatusCodeOk)
	s.Attributes().PutStr("faas.invocation_id", "0f8e2c4a-6b1d-4e3f-9a7c-5d2b8e1f4a6c")
	s.Attributes().PutBool("faas.coldstart", true)
	s.Attributes().PutStr("faas.trigger", "http")
	s.Attributes().PutStr("aws.lambda.invoked_arn", invokedARN)
	s = span(spans, invoke1Trace, apiCall, invoke1, "GET api.example.com", ptrace.SpanKindClient, 143, 151.5)
	s.Attributes().PutStr("http.request.method", "GET")
	s.Attributes().PutInt("http.response.status_code", 200)
	s.Attributes().PutStr("url.full", "https://api.example.com/v1/items?limit=100&cursor=eyJwYWdlIjoyfQ")

	td2, spans := newSpans()
	s = span(spans, invoke2Trace, invoke2, "", "hello-fn", ptrace.SpanKindServer, 1000, 1015.74)
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("Runtime.ExitError")
	s.Attributes().PutStr("faas.invocation_id", "2c8a9b1e-7d3f-4a5b-8c6e-1f0a9b8c7d6e")
	s.Attributes().PutBool("faas.coldstart", false)
	s.Attributes().PutStr("aws.lambda.status", "error")
	s.Attributes().PutStr("aws.lambda.invoked_arn", invokedARN)
	for _, e := range []struct {
		name     string
		at, took float64
	}{{"runtimeOverhead", 1014.9, 0.84}, {"responseLatency", 1001.2, 1.1}} {
		ev := s.Events().AppendEmpty()
		ev.SetName(e.name)
		ev.SetTimestamp(at(e.at))
		ev.Attributes().PutDouble("aws.lambda.duration_ms", e.took)
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("lambda-otel")
	for _, l := range []struct {
		trace, span string
		at          float64
		text        string
		number      plog.SeverityNumber
		body        string
	}{
		{"", "", 2, "", plog.SeverityNumberInfo, "lambda-otel: subscribed to platform, function and extension logs"},
		{initTrace, initSpan, 60, "INFO", plog.SeverityNumberInfo, "init: loading config from /var/task/config.json"},
		{invoke1Trace, invoke1, 141, "INFO", plog.SeverityNumberInfo, "handling GET /hello"},
		{invoke1Trace, apiCall, 144, "", plog.SeverityNumberDebug2, "cache miss for items page 2"},
		{invoke1Trace, invoke1, 152, "INFO", plog.SeverityNumberInfo, `response: {"items":[{"id":1,"name":"first"},{"id":2,"name":"second"},{"id":3,"name":"third"}],"next":"eyJwYWdlIjozfQ","total":1234}`},
		{invoke2Trace, invoke2, 1014, "ERROR", plog.SeverityNumberError, "Traceback (most recent call last):\n  File \"/var/task/app.py\", line 3, in handler\nValueError: bad input"},
		{invoke2Trace, invoke2, 1005, "", plog.SeverityNumberWarn, "retrying the upstream call"},
		{invoke2Trace, "00000000000000ff", 1020, "WARN", plog.SeverityNumberWarn, "a record of a span that was never exported"},
	} {
		r := sl.LogRecords().AppendEmpty()
		if l.trace != "" {
			r.SetTraceID(traceID(l.trace))
			r.SetSpanID(spanID(l.span))
		}
		r.SetTimestamp(at(l.at))
		r.SetObservedTimestamp(at(l.at + 1))
		r.SetSeverityText(l.text)
		r.SetSeverityNumber(l.number)
		r.Body().SetStr(l.body)
	}

	newMetrics := func() (pmetric.Metrics, pmetric.MetricSlice) {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		resource(rm.Resource())
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("lambda-otel")
		return md, sm.Metrics()
	}
	sum := func(ms pmetric.MetricSlice, name, unit string, temporality pmetric.AggregationTemporality, when float64, v int64) {
		m := ms.AppendEmpty()
		m.SetName(name)
		m.SetUnit(unit)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(temporality)
		dp := s.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(at(0))
		dp.SetTimestamp(at(when))
		dp.SetIntValue(v)
	}
	histogram := func(ms pmetric.MetricSlice, when float64, seconds float64) {
		m := ms.AppendEmpty()
		m.SetName("faas.invoke_duration")
		m.SetUnit("s")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(at(when))
		dp.SetCount(1)
		dp.SetSum(seconds)
		dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05})
		dp.BucketCounts().FromRaw([]uint64{0, 0, 1, 0, 0})
	}
	gauge := func(ms pmetric.MetricSlice, when float64, bytes int64) {
		m := ms.AppendEmpty()
		m.SetName("aws.lambda.max_memory_used")
		m.SetUnit("By")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(at(when))
		dp.SetIntValue(bytes)
	}
	const cumulative, delta = pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta
	md1, ms := newMetrics()
	sum(ms, "faas.invocations", "{invocation}", cumulative, 156, 1)
	sum(ms, "faas.coldstarts", "{coldstart}", delta, 156, 1)
	histogram(ms, 156, 0.01574)
	gauge(ms, 156, 35651584)
	md2, ms := newMetrics()
	sum(ms, "faas.invocations", "{invocation}", cumulative, 1016, 2)
	sum(ms, "faas.errors", "{error}", cumulative, 1016, 1)
	sum(ms, "faas.coldstarts", "{coldstart}", delta, 1016, 0)
	histogram(ms, 1016, 0.03021)
	gauge(ms, 1016, 36700160)

	return fixture{traces: []ptrace.Traces{td1, td2}, logs: []plog.Logs{ld}, metrics: []pmetric.Metrics{md1, md2}}
}
