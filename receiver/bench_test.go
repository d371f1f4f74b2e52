package receiver

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// benchSpans is the size of an export in the benchmarks: a handler's spans.
const benchSpans = 100

// BenchmarkReceive measures one OTLP/HTTP export of benchSpans spans to the receiver over
// loopback, with a kept-alive connection, as an SDK's exporter makes it: what a
// ForceFlush at the end of the handler waits for.
func BenchmarkReceive(b *testing.B) {
	r, buf, _ := start(b, Config{HTTP: true}, 64<<20)
	body := tracesBody(b, benchSpans, 0, false)
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var drained []telemetry.Received
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, typeProtobuf, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		drained = buf.DrainReceived(drained[:0])
	}
	b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkHandle measures the receiver's own work for one export (decode, check, buffer,
// answer) without the network.
func BenchmarkHandle(b *testing.B) {
	st := new(telemetry.Stats)
	buf := telemetry.NewBuffer(64<<20, st)
	r := &Receiver{buf: buf, stats: st, maxBody: DefaultMaxBodyBytes, changed: make(chan struct{}, 1)}
	body := tracesBody(b, benchSpans, 0, false)
	var rc fasthttp.RequestCtx
	var drained []telemetry.Received
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rc.Request.Reset()
		rc.Response.Reset()
		rc.Request.Header.SetMethod(fasthttp.MethodPost)
		rc.Request.SetRequestURI("/v1/traces")
		rc.Request.Header.SetContentType(typeProtobuf)
		rc.Request.SetBody(body)
		r.handleHTTP(&rc)
		if rc.Response.StatusCode() != 200 {
			b.Fatalf("status %d", rc.Response.StatusCode())
		}
		drained = buf.DrainReceived(drained[:0])
	}
	b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "spans/s")
}
