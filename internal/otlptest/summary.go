package otlptest

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Summary is what a backend received, reduced to what end-to-end tests assert on.
type Summary struct {
	// Spans are the span names, sorted.
	Spans []string
	// Errors are the status messages of the spans that failed, in arrival order.
	Errors []string
	// Traces are the trace ids of the spans.
	Traces map[string]bool
	// Severities counts the log records by severity text.
	Severities map[string]int
	// Metrics are the metric names, sorted and unique.
	Metrics []string
	// Services are the service.name values of the span resources.
	Services map[string]bool
}

// Summarize reduces received data, as Received returns it or ReadFile reads it.
func Summarize(traces []ptrace.Traces, logs []plog.Logs, metrics []pmetric.Metrics) Summary {
	s := Summary{Traces: map[string]bool{}, Severities: map[string]int{}, Services: map[string]bool{}}
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			if svc, ok := rs.Resource().Attributes().Get("service.name"); ok {
				s.Services[svc.Str()] = true
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					s.Spans = append(s.Spans, sp.Name())
					s.Traces[sp.TraceID().String()] = true
					if sp.Status().Code() == ptrace.StatusCodeError {
						s.Errors = append(s.Errors, sp.Status().Message())
					}
				}
			}
		}
	}
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					s.Severities[lr.SeverityText()]++
				}
			}
		}
	}
	names := map[string]bool{}
	for _, md := range metrics {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					names[m.Name()] = true
				}
			}
		}
	}
	slices.Sort(s.Spans)
	s.Metrics = slices.Sorted(maps.Keys(names))
	return s
}

// ReadFile reads OTLP JSON lines, one export request per line, as the emulator's sink
// writes them with --otlp-out and the file exporter writes them, by signal.
func ReadFile(t testing.TB, path string) ([]ptrace.Traces, []plog.Logs, []pmetric.Metrics) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		traces  []ptrace.Traces
		logs    []plog.Logs
		metrics []pmetric.Metrics
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var err error
		switch {
		case bytes.HasPrefix(line, []byte(`{"resourceSpans"`)):
			var td ptrace.Traces
			td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
			traces = append(traces, td)
		case bytes.HasPrefix(line, []byte(`{"resourceLogs"`)):
			var ld plog.Logs
			ld, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
			logs = append(logs, ld)
		case bytes.HasPrefix(line, []byte(`{"resourceMetrics"`)):
			var md pmetric.Metrics
			md, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
			metrics = append(metrics, md)
		default:
			t.Fatalf("%s: a line of no OTLP signal: %.80s", path, line)
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return traces, logs, metrics
}
