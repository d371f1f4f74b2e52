package receiver

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// FuzzHTTPHandler drives the OTLP/HTTP handler with any body, as protobuf or JSON, to any
// signal. It must answer 200, with every item buffered or refused as invalid, or 400
// without buffering anything; and it must never panic.
func FuzzHTTPHandler(f *testing.F) {
	// The OTLP specification's JSON examples, cut down, and protobuf of the same.
	f.Add(uint8(0), true, []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","kind":2}]}]}]}`))
	f.Add(uint8(1), true, []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1544712660300000000","severityNumber":10,"severityText":"Information","traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","body":{"stringValue":"Example log record"}}]}]}]}`))
	f.Add(uint8(2), true, []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"my.counter","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000"}]}}]}]}]}`))
	f.Add(uint8(0), false, []byte{0x0a, 0x05, 0x12, 0x03, 0x12, 0x01, 0x00})
	f.Add(uint8(1), false, []byte{})
	f.Fuzz(func(t *testing.T, which uint8, asJSON bool, body []byte) {
		sig := &signals[int(which)%len(signals)]
		st := new(telemetry.Stats)
		buf := telemetry.NewBuffer(1<<20, st)
		r := &Receiver{buf: buf, stats: st, maxBody: DefaultMaxBodyBytes, changed: make(chan struct{}, 1)}
		var rc fasthttp.RequestCtx
		rc.Request.Header.SetMethod(fasthttp.MethodPost)
		rc.Request.SetRequestURI(sig.path)
		if asJSON {
			rc.Request.Header.SetContentType(typeJSON)
		} else {
			rc.Request.Header.SetContentType(typeProtobuf)
		}
		rc.Request.SetBody(body)
		r.handleHTTP(&rc)
		c := st.Snapshot()
		buffered := 0
		for _, rec := range buf.DrainReceived(nil) {
			buffered += rec.Items
		}
		switch status := rc.Response.StatusCode(); status {
		case fasthttp.StatusOK:
			got := c.Received[sig.kind][telemetry.ReceiveAccepted]
			if uint64(buffered) != got {
				t.Fatalf("200 with %d items buffered but %d counted", buffered, got)
			}
		case fasthttp.StatusBadRequest:
			if buffered != 0 || c.ReceiveFailed[telemetry.ReceiveMalformed] != 1 {
				t.Fatalf("400 with %d items buffered, %d counted malformed", buffered, c.ReceiveFailed[telemetry.ReceiveMalformed])
			}
		default:
			t.Fatalf("status %d", status)
		}
		if c.ReceiveFailed[telemetry.ReceivePanic] != 0 {
			t.Fatal("the handler panicked")
		}
	})
}
