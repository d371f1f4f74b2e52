package bench

import (
	"flag"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

// The sustained stream's length: 30 s by default, as the memory budget is stated for.
var streamFor = flag.Duration("stream-for", 30*time.Second, "how long BenchmarkMemory streams log lines")

// BenchmarkInit measures cold starts of the floor extension and of lambda-otel, each
// iteration one of each; the figures are medians over the iterations.
func BenchmarkInit(b *testing.B) {
	var floor, otel, diff []time.Duration
	for b.Loop() {
		f, o := startups(b, 1)
		floor, otel, diff = append(floor, f[0]), append(otel, o[0]), append(diff, o[0]-f[0])
	}
	b.ReportMetric(ms(median(floor)), "ms-floor-start")
	b.ReportMetric(ms(median(otel)), "ms-start")
	b.ReportMetric(ms(median(diff)), "ms-over-floor")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkInvoke measures the time an extension adds after each warm invocation's
// response, per flush strategy, with invocations every 10 ms.
func BenchmarkInvoke(b *testing.B) {
	for _, s := range strategies {
		b.Run(s.name, func(b *testing.B) {
			var all []time.Duration
			for b.Loop() {
				all = append(all, overheadOf(b, s.ext, s.env, 40)...)
			}
			b.ReportMetric(ms(median(all)), "ms-after-response")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkBackend is the local receiver's own round trip, the part of `end` that any
// exporter pays.
func BenchmarkBackend(b *testing.B) {
	r := otlptest.Start(b)
	var all []time.Duration
	for b.Loop() {
		all = append(all, backendLatency(b, r, 20))
	}
	b.ReportMetric(ms(median(all)), "ms-round-trip")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMemory measures lambda-otel's resident set after init and at its peak while the
// function writes 10,000 lines a second.
func BenchmarkMemory(b *testing.B) {
	var idle, peak []int64
	for b.Loop() {
		r := stream(b, 1000, *streamFor)
		idle, peak = append(idle, r.idle), append(peak, r.peak)
	}
	b.ReportMetric(mb(median(idle)), "MB-idle")
	b.ReportMetric(mb(median(peak)), "MB-peak")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkShutdownFlush measures SHUTDOWN to exit with 100,000 log lines held.
func BenchmarkShutdownFlush(b *testing.B) {
	var all []time.Duration
	for b.Loop() {
		all = append(all, shutdownFlush(b, 100000))
	}
	b.ReportMetric(ms(median(all)), "ms-shutdown")
	b.ReportMetric(0, "ns/op")
}

// The tests run each experiment briefly and check what it measured is sane.

func TestStartups(t *testing.T) {
	floor, otel := startups(t, 2)
	for i := range floor {
		if floor[i] <= 0 || otel[i] <= 0 {
			t.Errorf("start-up %d: floor %v, lambda-otel %v, want both measured", i, floor[i], otel[i])
		}
	}
}

func TestOverheads(t *testing.T) {
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			got := overheadOf(t, s.ext, s.env, warmUp+3)
			if len(got) != 3 {
				t.Fatalf("%d overheads, want 3", len(got))
			}
		})
	}
}

func TestStream(t *testing.T) {
	r := stream(t, 200, 300*time.Millisecond)
	if r.idle <= 0 || r.peak < r.idle || r.lines < 200 {
		t.Errorf("stream = %+v, want idle and peak measured and lines written", r)
	}
}

func TestShutdownFlush(t *testing.T) {
	if d := shutdownFlush(t, 20000); d <= 0 {
		t.Errorf("shutdown took %v", d)
	}
}

func TestBackendLatency(t *testing.T) {
	if d := backendLatency(t, otlptest.Start(t), 3); d <= 0 {
		t.Errorf("round trip %v", d)
	}
}
