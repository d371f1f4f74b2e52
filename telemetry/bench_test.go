package telemetry

import (
	"bytes"
	"fmt"
	"testing"
)

const benchBatchSize = 1000

// functionLogBatch is 1,000 text log lines as a Node.js function writes them.
func functionLogBatch() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range benchBatchSize {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"time":"2022-10-12T00:03:50.%03dZ","type":"function","record":"2022-10-12T00:03:50.%03dZ 79b4f56e-95b1-4643-9700-2807f4e68189\tINFO\tprocessed order %d for customer 42 in 12 ms"}`, i%1000, i%1000, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// jsonLogBatch is 1,000 lines in the JSON log format.
func jsonLogBatch() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range benchBatchSize {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"time":"2022-10-12T00:03:50.%03dZ","type":"function","record":{"timestamp":"2022-10-12T00:03:50.%03dZ","level":"INFO","requestId":"79b4f56e-95b1-4643-9700-2807f4e68189","message":"processed order %d"}}`, i%1000, i%1000, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// platformBatch is 1,000 platform events: start, runtimeDone and report of successive
// invocations, the bulk of what the platform stream carries.
func platformBatch() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range benchBatchSize {
		if i > 0 {
			b.WriteByte(',')
		}
		id := fmt.Sprintf("6d68ca91-49c9-448d-89b8-%012d", i/3)
		trace := `{"spanId":"54565fb41ac79632","type":"X-Amzn-Trace-Id","value":"Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"}`
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `{"time":"2022-10-12T00:00:15.064Z","type":"platform.start","record":{"requestId":%q,"version":"$LATEST","tracing":%s}}`, id, trace)
		case 1:
			fmt.Fprintf(&b, `{"time":"2022-10-12T00:00:15.264Z","type":"platform.runtimeDone","record":{"requestId":%q,"status":"success","tracing":%s,"spans":[{"name":"responseLatency","start":"2022-10-12T00:00:15.100Z","durationMs":23.02},{"name":"responseDuration","start":"2022-10-12T00:00:15.123Z","durationMs":0.5},{"name":"runtimeOverhead","start":"2022-10-12T00:00:15.124Z","durationMs":1.2}],"metrics":{"durationMs":200.0,"producedBytes":16}}}`, id, trace)
		default:
			fmt.Fprintf(&b, `{"time":"2022-10-12T00:00:15.300Z","type":"platform.report","record":{"requestId":%q,"status":"success","tracing":%s,"metrics":{"billedDurationMs":201,"durationMs":200.5,"maxMemoryUsedMB":84,"memorySizeMB":128}}}`, id, trace)
		}
	}
	b.WriteByte(']')
	return b.Bytes()
}

func benchDecode(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	dst := make([]Event, 0, benchBatchSize)
	for b.Loop() {
		var err error
		dst, err = DecodeBatch(dst[:0], body)
		if err != nil || len(dst) != benchBatchSize {
			b.Fatalf("%d events, %v", len(dst), err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkDecodeFunctionLogs(b *testing.B)   { benchDecode(b, functionLogBatch()) }
func BenchmarkDecodeJSONLogs(b *testing.B)       { benchDecode(b, jsonLogBatch()) }
func BenchmarkDecodePlatformEvents(b *testing.B) { benchDecode(b, platformBatch()) }

// BenchmarkIngest measures the listener's whole per-request work (decode, count, buffer)
// without the network.
func BenchmarkIngest(b *testing.B) {
	body := functionLogBatch()
	st := new(Stats)
	buf := NewBuffer(64<<20, st)
	l := newListener(buf, st)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var drained []Event
	for b.Loop() {
		l.ingest(body)
		drained = buf.Drain(drained[:0])
	}
	b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
}
