package extension

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
	"github.com/lambda-otel/lambda-otel/receiver"
)

// xrayHeader is an invocation's sampled X-Ray header: trace n, parent segment n.
func xrayHeader(n int) (header string, trace pcommon.TraceID, parent pcommon.SpanID) {
	header = fmt.Sprintf("Root=1-6b0190e7-%024x;Parent=%016x;Sampled=1", n, n)
	trace[15], parent[7] = byte(n), byte(n)
	copy(trace[:4], []byte{0x6b, 0x01, 0x90, 0xe7})
	return header, trace, parent
}

// sendSpan posts one SDK span, a child of parent in trace, to the receiver at port.
func sendSpan(t *testing.T, ctx context.Context, port int, trace pcommon.TraceID, parent pcommon.SpanID, name string) {
	t.Helper()
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName(name)
	s.SetTraceID(trace)
	s.SetSpanID(pcommon.SpanID{0xaa, parent[7]})
	s.SetParentSpanID(parent)
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://127.0.0.1:"+strconv.Itoa(port)+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the receiver answered %d", resp.StatusCode)
	}
}

// deliverPhase delivers an invocation's platform.start and platform.runtimeDone.
func deliverPhase(t *testing.T, ctx context.Context, sub lambdatest.SubscribeCall, id, header string) {
	t.Helper()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	tracing := fmt.Sprintf(`{"spanId":"%016x","type":"X-Amzn-Trace-Id","value":%q}`, 0xbb00+len(id), header)
	batch := fmt.Sprintf(`[{"time":%q,"type":"platform.start","record":{"requestId":%q,"tracing":%s}},
		{"time":%q,"type":"platform.runtimeDone","record":{"requestId":%q,"status":"success","tracing":%s}}]`, now, id, tracing, now, id, tracing)
	if status, err := lambdatest.Deliver(ctx, sub, []byte(batch)); err != nil || status != 200 {
		t.Fatalf("deliver: %d %v", status, err)
	}
}

// sdkSpansAt counts the spans named name at the backend.
func sdkSpansAt(rcv *otlptest.Receiver, name string) int {
	traces, _, _ := rcv.Received()
	n := 0
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.Name() == name {
						n++
					}
				}
			}
		}
	}
	return n
}

// TestEndFlushWaitsForTheSDK checks that, once the function's SDK has sent the root spans
// of invocations, the end-of-invocation flush waits for the next invocation's: an SDK
// flush that arrives after platform.runtimeDone is in the export made before the
// extension asks for its next event.
func TestEndFlushWaitsForTheSDK(t *testing.T) {
	ctx := testCtx(t)
	rcv := otlptest.Start(t)
	cfg := testConfig()
	exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
	cfg.Flush = Flush{Mode: FlushEnd}
	// Half the budget, 10 s, is the most the flush waits for the SDK: far more than the
	// test needs, so that it does not depend on timing.
	cfg.FlushTimeoutMs = 20000
	port := testbin.FreePort(t)
	cfg.Receiver = receiver.Config{HTTP: true, HTTPPort: port}
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")

	// The first invocation's SDK spans arrive before its end, as when the SDK flushes in
	// the handler: the extension learns that the function sends them.
	h1, trace1, parent1 := xrayHeader(1)
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "first", "deadlineMs": time.Now().Add(time.Minute).UnixMilli(),
		"tracing": map[string]string{"type": "X-Amzn-Trace-Id", "value": h1}}); err != nil {
		t.Fatal(err)
	}
	sendSpan(t, ctx, port, trace1, parent1, "handle first")
	deliverPhase(t, ctx, sub, "first", h1)
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if n := sdkSpansAt(rcv, "handle first"); n != 1 {
		t.Fatalf("after the first invocation the backend has %d of its SDK spans, want 1", n)
	}

	// The second's arrive only after its platform.runtimeDone.
	h2, trace2, parent2 := xrayHeader(2)
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "second", "deadlineMs": time.Now().Add(time.Minute).UnixMilli(),
		"tracing": map[string]string{"type": "X-Amzn-Trace-Id", "value": h2}}); err != nil {
		t.Fatal(err)
	}
	deliverPhase(t, ctx, sub, "second", h2)
	sendSpan(t, ctx, port, trace2, parent2, "handle second")
	r.shutdownAfterNext(t, ctx, func() {
		if n := sdkSpansAt(rcv, "handle second"); n != 1 {
			t.Errorf("when the extension asked for its next event the backend had %d of the second invocation's SDK spans, want 1", n)
		}
	})
}

// TestReceiverStaysOffWhereTheExporterSends checks that the receiver does not listen on
// the port the OTLP exporter sends to on this machine, which would loop the extension's
// exports back into it, and that it says so.
func TestReceiverStaysOffWhereTheExporterSends(t *testing.T) {
	ctx := testCtx(t)
	port := testbin.FreePort(t)
	cfg := testConfig()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:" + strconv.Itoa(port)}
	ec, err := exporters.LoadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Export = ec
	cfg.Receiver = receiver.Config{HTTP: true, HTTPPort: port}
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	r.shutdown(t, ctx)
	if out := r.logs.String(); !strings.Contains(out, "the OTLP/HTTP receiver is off: the OTLP exporter sends to its port") {
		t.Errorf("no word of the receiver being off:\n%s", out)
	}
}

// TestReceiverPortTaken checks that a receiver whose port is taken is reported and the
// extension carries on.
func TestReceiverPortTaken(t *testing.T) {
	ctx := testCtx(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Receiver = receiver.Config{HTTP: true, HTTPPort: ln.Addr().(*net.TCPAddr).Port}
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	r.invoke(t, ctx, "r1")
	r.shutdown(t, ctx)
	if out := r.logs.String(); !strings.Contains(out, "the local OTLP receiver could not start") || !strings.Contains(out, "address already in use") {
		t.Errorf("the taken port was not reported:\n%s", out)
	}
}

// TestReceiverWithoutSubscription checks that, with the subscription refused, the end
// flush does not wait for a platform.runtimeDone that will never come, and still exports
// what the receiver took.
func TestReceiverWithoutSubscription(t *testing.T) {
	ctx := testCtx(t)
	rcv := otlptest.Start(t)
	cfg := testConfig()
	exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
	cfg.Flush = Flush{Mode: FlushEnd}
	port := testbin.FreePort(t)
	cfg.Receiver = receiver.Config{HTTP: true, HTTPPort: port}
	r := startAgent(t, lambdatest.Options{SubscribeStatus: http.StatusBadRequest, SubscribeBody: `{"errorType":"ValidationError"}`}, cfg, nil)
	h, trace, parent := xrayHeader(1)
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	sendSpan(t, ctx, port, trace, parent, "handle")
	// The invocation's deadline is far beyond the test's: a wait for runtimeDone would
	// hold event/next past the test's own deadline.
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1", "deadlineMs": time.Now().Add(time.Hour).UnixMilli(),
		"tracing": map[string]string{"type": "X-Amzn-Trace-Id", "value": h}}); err != nil {
		t.Fatal(err)
	}
	r.shutdownAfterNext(t, ctx, func() {
		if n := sdkSpansAt(rcv, "handle"); n != 1 {
			t.Errorf("when the extension asked for its next event the backend had %d SDK spans, want 1", n)
		}
	})
}
