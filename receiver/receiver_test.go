package receiver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lambda-otel/lambda-otel/internal/grpcwire"
	"github.com/lambda-otel/lambda-otel/internal/pbwire"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start runs a receiver on free loopback ports, buffering up to bufBytes (1 MiB for 0).
func start(t testing.TB, cfg Config, bufBytes int) (*Receiver, *telemetry.Buffer, *telemetry.Stats) {
	t.Helper()
	if bufBytes == 0 {
		bufBytes = 1 << 20
	}
	st := new(telemetry.Stats)
	buf := telemetry.NewBuffer(bufBytes, st)
	r, err := Start(t.Context(), cfg, buf, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r, buf, st
}

// TestSDKExportersOverHTTP sends spans (gzip) and logs from the OpenTelemetry Go SDK to
// the OTLP/HTTP receiver and checks that they are in the buffer as sent.
func TestSDKExportersOverHTTP(t *testing.T) {
	ctx := testCtx(t)
	r, buf, st := start(t, Config{HTTP: true}, 1<<20)
	endpoint := r.HTTPAddr().String()

	te, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure(), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(te))
	_, span := tp.Tracer("test").Start(ctx, "handler")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("the SDK's trace export failed: %v", err)
	}

	le, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(endpoint), otlploghttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(le)))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("hello from the SDK"))
	lp.Logger("test").Emit(ctx, rec)
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("the SDK's log export failed: %v", err)
	}

	got := buf.DrainReceived(nil)
	if len(got) != 2 {
		t.Fatalf("buffered %d requests, want 2", len(got))
	}
	if s := got[0].Traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0); s.Name() != "handler" {
		t.Errorf("span name = %q", s.Name())
	}
	if l := got[1].Logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0); l.Body().Str() != "hello from the SDK" {
		t.Errorf("log body = %q", l.Body().Str())
	}
	c := st.Snapshot()
	if c.Received[telemetry.SignalTraces][telemetry.ReceiveAccepted] != 1 || c.Received[telemetry.SignalLogs][telemetry.ReceiveAccepted] != 1 {
		t.Errorf("counts = %+v", c.Received)
	}
}

// TestSDKExporterOverGRPC sends spans from the SDK's gRPC exporter (grpc-go) to the
// OTLP/gRPC receiver.
func TestSDKExporterOverGRPC(t *testing.T) {
	ctx := testCtx(t)
	r, buf, _ := start(t, Config{GRPC: true}, 1<<20)
	te, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr().String()), otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(te))
	for _, name := range []string{"a", "b"} {
		_, span := tp.Tracer("test").Start(ctx, name)
		span.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("the SDK's gRPC export failed: %v", err)
	}
	items := 0
	for _, rec := range buf.DrainReceived(nil) {
		items += rec.Traces.SpanCount()
	}
	if items != 2 {
		t.Errorf("buffered %d spans, want 2", items)
	}
}

// tracesBody is an export request of n spans; invalid of them have an all-zero trace id.
func tracesBody(t testing.TB, n, invalid int, asJSON bool) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		s := spans.AppendEmpty()
		s.SetName(fmt.Sprintf("span %d", i))
		if i >= invalid {
			s.SetTraceID(pcommon.TraceID{1, byte(i)})
		}
		s.SetSpanID(pcommon.SpanID{2, byte(i)})
	}
	var b []byte
	var err error
	if asJSON {
		b, err = (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	} else {
		b, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestHTTPAnswers checks every OTLP/HTTP answer: status, media type, body, and what was
// buffered and counted.
func TestHTTPAnswers(t *testing.T) {
	const limit = 4096
	logsBody, _ := (&plog.ProtoMarshaler{}).MarshalLogs(func() plog.Logs {
		ld := plog.NewLogs()
		ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("line")
		return ld
	}())
	tests := []struct {
		name                  string
		method, path, ctype   string
		encoding              string
		body                  []byte
		bufBytes              int
		wantStatus            int
		wantType              string
		wantBody              string // a substring of the body as text, JSON or a Status message
		wantBuffered          int    // items
		wantRefused           int    // items counted buffer_full or invalid
		wantFailure           telemetry.ReceiveFailure
		wantRetryAfter        string
		wantFailed            bool
		wantPartialProtobufOf int
	}{
		{name: "spans", path: "/v1/traces", ctype: typeProtobuf, body: tracesBody(t, 3, 0, false), wantStatus: 200, wantType: typeProtobuf, wantBuffered: 3},
		{name: "spans as JSON", path: "/v1/traces", ctype: typeJSON + "; charset=utf-8", body: tracesBody(t, 2, 0, true), wantStatus: 200, wantType: typeJSON, wantBody: "{}", wantBuffered: 2},
		{name: "gzip", path: "/v1/traces", ctype: typeProtobuf, encoding: "gzip", body: gzipped(t, tracesBody(t, 2, 0, false)), wantStatus: 200, wantType: typeProtobuf, wantBuffered: 2},
		{name: "logs", path: "/v1/logs", ctype: typeProtobuf, body: logsBody, wantStatus: 200, wantType: typeProtobuf, wantBuffered: 1},
		{name: "partial success", path: "/v1/traces", ctype: typeProtobuf, body: tracesBody(t, 3, 1, false), wantStatus: 200, wantType: typeProtobuf, wantBuffered: 2, wantRefused: 1, wantPartialProtobufOf: 1},
		{name: "partial success as JSON", path: "/v1/traces", ctype: typeJSON, body: tracesBody(t, 3, 2, true), wantStatus: 200, wantType: typeJSON, wantBody: `{"partialSuccess":{"errorMessage":"` + errInvalidIDs + `","rejectedSpans":"2"}}`, wantBuffered: 1, wantRefused: 2},
		{name: "buffer full", path: "/v1/traces", ctype: typeProtobuf, body: tracesBody(t, 3, 0, false), bufBytes: 10, wantStatus: 429, wantType: typeProtobuf, wantBody: "buffer is full", wantRefused: 3, wantRetryAfter: "1"},
		{name: "unknown path", path: "/v1/profiles", ctype: typeProtobuf, body: logsBody, wantStatus: 404, wantBody: "no OTLP signal", wantFailed: true, wantFailure: telemetry.ReceiveUnsupported},
		{name: "GET", method: "GET", path: "/v1/logs", wantStatus: 405, wantBody: "POST only", wantFailed: true, wantFailure: telemetry.ReceiveUnsupported},
		{name: "media type", path: "/v1/logs", ctype: "text/plain", body: logsBody, wantStatus: 415, wantBody: `"text/plain" is not OTLP`, wantFailed: true, wantFailure: telemetry.ReceiveUnsupported},
		{name: "encoding", path: "/v1/logs", ctype: typeProtobuf, encoding: "br", body: logsBody, wantStatus: 415, wantBody: `Content-Encoding "br"`, wantFailed: true, wantFailure: telemetry.ReceiveUnsupported},
		{name: "corrupt gzip", path: "/v1/logs", ctype: typeProtobuf, encoding: "gzip", body: []byte("not gzip"), wantStatus: 400, wantBody: "gzip body is corrupt", wantFailed: true, wantFailure: telemetry.ReceiveMalformed},
		{name: "malformed protobuf", path: "/v1/traces", ctype: typeProtobuf, body: []byte{0x0a, 0xff}, wantStatus: 400, wantBody: "not an OTLP traces request", wantFailed: true, wantFailure: telemetry.ReceiveMalformed},
		{name: "malformed JSON", path: "/v1/logs", ctype: typeJSON, body: []byte(`{"resourceLogs":[`), wantStatus: 400, wantType: typeJSON, wantBody: "not an OTLP logs request", wantFailed: true, wantFailure: telemetry.ReceiveMalformed},
		{name: "too large", path: "/v1/logs", ctype: typeProtobuf, body: make([]byte, limit+1), wantStatus: 413, wantBody: "over the receiver's limit", wantFailed: true, wantFailure: telemetry.ReceiveTooLarge},
		{name: "too large once uncompressed", path: "/v1/logs", ctype: typeProtobuf, encoding: "gzip", body: gzipped(t, make([]byte, limit+1)), wantStatus: 413, wantBody: "over the receiver's limit", wantFailed: true, wantFailure: telemetry.ReceiveTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			r, buf, st := start(t, Config{HTTP: true, MaxBodyBytes: limit}, tt.bufBytes)
			req, err := http.NewRequestWithContext(ctx, cmpOr(tt.method, "POST"), "http://"+r.HTTPAddr().String()+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("Content-Type"); cmpOr(tt.wantType, typeProtobuf) != got {
				t.Errorf("Content-Type %q, want %q", got, cmpOr(tt.wantType, typeProtobuf))
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			text := string(body)
			if resp.StatusCode != 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), typeJSON) {
				text = string(pbwire.Bytes(body, 2)) // google.rpc.Status.message
			}
			if tt.wantBody != "" && !strings.Contains(text, tt.wantBody) {
				t.Errorf("body %q does not say %q", text, tt.wantBody)
			}
			if tt.wantPartialProtobufOf > 0 {
				partial := pbwire.Bytes(body, 1)
				if n := pbwire.Uint(partial, 1); n != uint64(tt.wantPartialProtobufOf) {
					t.Errorf("partial success rejects %d, want %d", n, tt.wantPartialProtobufOf)
				}
				if msg := string(pbwire.Bytes(partial, 2)); msg != errInvalidIDs {
					t.Errorf("partial success says %q", msg)
				}
			}
			items := 0
			for _, rec := range buf.DrainReceived(nil) {
				items += rec.Items
			}
			if items != tt.wantBuffered {
				t.Errorf("buffered %d items, want %d", items, tt.wantBuffered)
			}
			c := st.Snapshot()
			refused := 0
			for _, sig := range telemetry.Signals() {
				refused += int(c.Received[sig][telemetry.ReceiveInvalid] + c.Received[sig][telemetry.ReceiveBufferFull])
			}
			if refused != tt.wantRefused {
				t.Errorf("counted %d refused items, want %d", refused, tt.wantRefused)
			}
			for _, f := range telemetry.ReceiveFailures() {
				want := uint64(0)
				if tt.wantFailed && f == tt.wantFailure {
					want = 1
				}
				if c.ReceiveFailed[f] != want {
					t.Errorf("counted %d %s failures, want %d", c.ReceiveFailed[f], f, want)
				}
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// grpcCall makes a unary call with net/http's HTTP/2 client and returns the response
// message and the status.
func grpcCall(t *testing.T, ctx context.Context, addr, method string, body []byte) (msg []byte, status, message, details string) {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+method, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	msg, err = grpcwire.Message(raw, "", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return msg, resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message"), resp.Trailer.Get("Grpc-Status-Details-Bin")
}

// TestGRPCAnswers checks the OTLP/gRPC statuses, with a RetryInfo only where a client
// should retry.
func TestGRPCAnswers(t *testing.T) {
	const limit = 4096
	traces := "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	tests := []struct {
		name, method string
		frame        []byte
		bufBytes     int
		wantStatus   string
		wantMessage  string
		wantRetry    bool
		wantRejected uint64
	}{
		{name: "spans", method: traces, frame: grpcwire.Frame(tracesBody(t, 2, 0, false), false), wantStatus: "0"},
		{name: "partial success", method: traces, frame: grpcwire.Frame(tracesBody(t, 2, 1, false), false), wantStatus: "0", wantRejected: 1},
		// A compressed frame without a grpc-encoding header cannot be read.
		{name: "gzip without its header", method: traces, frame: grpcwire.Frame(gzipped(t, tracesBody(t, 2, 0, false)), true), wantStatus: "3", wantMessage: "could not be read"},
		{name: "buffer full", method: traces, frame: grpcwire.Frame(tracesBody(t, 2, 0, false), false), bufBytes: 10, wantStatus: "8", wantMessage: "buffer is full", wantRetry: true},
		{name: "unknown method", method: "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", frame: grpcwire.Frame(nil, false), wantStatus: "12", wantMessage: "unknown method"},
		{name: "malformed", method: traces, frame: grpcwire.Frame([]byte{0x0a, 0xff}, false), wantStatus: "3", wantMessage: "not an OTLP traces request"},
		{name: "short frame", method: traces, frame: []byte{0, 0, 0, 0, 9, 1}, wantStatus: "3", wantMessage: "could not be read"},
		{name: "too large", method: traces, frame: grpcwire.Frame(make([]byte, limit+1), false), wantStatus: "8", wantMessage: "over the receiver's limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			r, _, _ := start(t, Config{GRPC: true, MaxBodyBytes: limit}, tt.bufBytes)
			msg, status, message, details := grpcCall(t, ctx, r.GRPCAddr().String(), tt.method, tt.frame)
			if status != tt.wantStatus || !strings.Contains(message, tt.wantMessage) {
				t.Errorf("status %s %q, want %s %q", status, message, tt.wantStatus, tt.wantMessage)
			}
			hasRetry := false
			if details != "" {
				raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(details, "="))
				if err != nil {
					t.Fatal(err)
				}
				any := pbwire.Bytes(raw, 3)
				hasRetry = strings.HasSuffix(string(pbwire.Bytes(any, 1)), "google.rpc.RetryInfo") && pbwire.Uint(pbwire.Bytes(pbwire.Bytes(any, 2), 1), 1) == 1
			}
			if hasRetry != tt.wantRetry {
				t.Errorf("RetryInfo of one second: %t, want %t", hasRetry, tt.wantRetry)
			}
			if got := pbwire.Uint(pbwire.Bytes(msg, 1), 1); got != tt.wantRejected {
				t.Errorf("partial success rejects %d, want %d", got, tt.wantRejected)
			}
		})
	}
}

// TestBindsLoopbackOnly checks that the receiver refuses any other address and binds
// loopback by default.
func TestBindsLoopbackOnly(t *testing.T) {
	st := new(telemetry.Stats)
	buf := telemetry.NewBuffer(1024, st)
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "localhost"} {
		if r, err := Start(t.Context(), Config{HTTP: true, Hosts: []string{host}}, buf, st); err == nil || r != nil || !strings.Contains(err.Error(), "loopback addresses only") {
			t.Errorf("binding %s: %v, want a refusal", host, err)
		}
	}
	r, _, _ := start(t, Config{HTTP: true, GRPC: true}, 1024)
	for _, a := range r.Addrs() {
		if ip := a.(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("bound %s", a)
		}
	}
	if r.HTTPAddr() == nil || r.GRPCAddr() == nil {
		t.Fatal("a protocol is off")
	}
}

// TestBusyWhileARequestIsOnItsWay checks that a request whose body is still arriving
// counts as busy, and that its end is signalled.
func TestBusyWhileARequestIsOnItsWay(t *testing.T) {
	ctx := testCtx(t)
	r, buf, _ := start(t, Config{HTTP: true}, 1<<20)
	body := tracesBody(t, 1, 0, false)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", typeProtobuf, len(body))
	for !r.Busy() {
		select {
		case <-ctx.Done():
			t.Fatal("the request in progress never counted as busy")
		case <-r.Changed():
		}
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	for r.Busy() {
		select {
		case <-ctx.Done():
			t.Fatal("the request never ended")
		case <-r.Changed():
		}
	}
	if got := buf.DrainReceived(nil); len(got) != 1 {
		t.Errorf("buffered %d requests, want 1 once the receiver is idle", len(got))
	}
}

// TestPercentEncode checks grpc-message's encoding.
func TestPercentEncode(t *testing.T) {
	if got := percentEncode("100% sure\nnaïve"); got != "100%25 sure%0Ana%C3%AFve" {
		t.Errorf("got %q", got)
	}
}

// TestJSONPartialSuccessDecodes checks the JSON answer against the field names the
// OTLP JSON encoding uses.
func TestJSONPartialSuccessDecodes(t *testing.T) {
	var resp struct {
		PartialSuccess struct {
			RejectedLogRecords string `json:"rejectedLogRecords"`
			ErrorMessage       string `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	b := answer{rejected: 4, message: "m"}.response(&signals[1], true)
	if err := json.Unmarshal(b, &resp); err != nil || resp.PartialSuccess.RejectedLogRecords != "4" || resp.PartialSuccess.ErrorMessage != "m" {
		t.Errorf("%s: %+v %v", b, resp, err)
	}
}

// TestCloseWithClientsConnected checks that Close ends connections the SDKs keep open
// between exports, over both protocols, without waiting for its deadline.
func TestCloseWithClientsConnected(t *testing.T) {
	ctx := testCtx(t)
	st := new(telemetry.Stats)
	r, err := Start(ctx, Config{HTTP: true, GRPC: true}, telemetry.NewBuffer(1<<20, st), st)
	if err != nil {
		t.Fatal(err)
	}
	te, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr().String()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer te.Shutdown(context.Background())
	he, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(r.HTTPAddr().String()), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer he.Shutdown(context.Background())
	for _, exp := range []sdktrace.SpanExporter{te, he} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		_, span := tp.Tracer("test").Start(ctx, "kept-alive")
		span.End()
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if cctx.Err() != nil {
		t.Error("Close waited for its deadline")
	}
}
