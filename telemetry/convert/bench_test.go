package convert

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// mixedBatch is about n events as a busy function produces them: per invocation a Start,
// eight text lines in the Node.js format, two JSON lines, a RuntimeDone and a Report.
func mixedBatch(b *testing.B, n int) []telemetry.Event {
	b.Helper()
	var sb strings.Builder
	sb.WriteByte('[')
	at := testStart
	next := func() string {
		at = at.Add(time.Millisecond)
		return at.Format("2006-01-02T15:04:05.000Z")
	}
	for i := 0; sb.Len() == 1 || strings.Count(sb.String(), `"type"`) < n; i++ {
		id := fmt.Sprintf("%08d-95b1-4643-9700-2807f4e68189", i)
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"time":"%s","type":"platform.start","record":{"requestId":"%s","version":"$LATEST","tracing":{"spanId":"54565fb41ac79632","type":"X-Amzn-Trace-Id","value":"Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"}}}`, next(), id)
		for j := range 8 {
			ts := next()
			fmt.Fprintf(&sb, `,{"time":"%s","type":"function","record":"%s\t%s\tINFO\tprocessed item %d of the order in 3 ms\n"}`, ts, ts, id, j)
		}
		for range 2 {
			ts := next()
			fmt.Fprintf(&sb, `,{"time":"%s","type":"function","record":{"timestamp":"%s","level":"WARN","requestId":"%s","message":"slow downstream","latencyMs":912,"service":"payments"}}`, ts, ts, id)
		}
		fmt.Fprintf(&sb, `,{"time":"%s","type":"platform.runtimeDone","record":{"requestId":"%s","status":"success","spans":[{"name":"responseLatency","start":"%s","durationMs":12.5},{"name":"responseDuration","start":"%s","durationMs":0.4}],"metrics":{"durationMs":13.0,"producedBytes":53}}}`, next(), id, next(), next())
		fmt.Fprintf(&sb, `,{"time":"%s","type":"platform.report","record":{"requestId":"%s","status":"success","metrics":{"durationMs":14.1,"billedDurationMs":15,"memorySizeMB":128,"maxMemoryUsedMB":64}}}`, next(), id)
	}
	sb.WriteByte(']')
	events, err := telemetry.DecodeBatch(nil, []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return events
}

// BenchmarkConvert measures conversion alone: events in, pdata out.
func BenchmarkConvert(b *testing.B) {
	events := mixedBatch(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		c := New(Options{Config: DefaultConfig(), Resource: Resource{FunctionName: "fn"}, Start: testStart})
		c.Add(events)
		c.Take(testStart, Self{})
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConvertEncode measures conversion and OTLP protobuf encoding of all three
// signals: the work between the buffer and the wire.
func BenchmarkConvertEncode(b *testing.B) {
	events := mixedBatch(b, 1000)
	var tm ptrace.ProtoMarshaler
	var lm plog.ProtoMarshaler
	var mm pmetric.ProtoMarshaler
	b.ReportAllocs()
	for b.Loop() {
		c := New(Options{Config: DefaultConfig(), Resource: Resource{FunctionName: "fn"}, Start: testStart})
		c.Add(events)
		d := c.Take(testStart, Self{})
		for _, err := range []error{
			second(tm.MarshalTraces(d.Traces)), second(lm.MarshalLogs(d.Logs)), second(mm.MarshalMetrics(d.Metrics)),
		} {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func second[T any](_ T, err error) error { return err }
