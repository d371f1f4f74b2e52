package main

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// binDir holds the real programs, built as make run builds them.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		binDir = dir
		return testbin.Build(map[string]string{
			filepath.Join(dir, "lambda-emulator"): "github.com/lambda-otel/lambda-otel/cmd/lambda-emulator",
			filepath.Join(dir, "lambda-otel"):     "github.com/lambda-otel/lambda-otel/cmd/lambda-otel",
			filepath.Join(dir, "hello"):           "github.com/lambda-otel/lambda-otel/examples/hello",
		}, nil)
	}))
}

// received is what a backend got from one demo run, reduced to what the README promises.
type received struct {
	spans      []string // span names, sorted
	errors     []string // status messages of the spans that failed
	traces     map[string]bool
	severities map[string]int
	metrics    []string // metric names, sorted and unique
	services   map[string]bool
}

func summarise(traces []ptrace.Traces, logs []plog.Logs, metrics []pmetric.Metrics) received {
	r := received{traces: map[string]bool{}, severities: map[string]int{}, services: map[string]bool{}}
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			if svc, ok := rs.Resource().Attributes().Get("service.name"); ok {
				r.services[svc.Str()] = true
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					r.spans = append(r.spans, sp.Name())
					r.traces[sp.TraceID().String()] = true
					if sp.Status().Code() == ptrace.StatusCodeError {
						r.errors = append(r.errors, sp.Status().Message())
					}
				}
			}
		}
	}
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					r.severities[lr.SeverityText()]++
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
	slices.Sort(r.spans)
	r.metrics = slices.Sorted(maps.Keys(names))
	return r
}

// The demo's promise, as the README states it: a cold start and four invocations, one
// failing, each with its logs at several severities, and the faas metrics.
var (
	wantSpans      = []string{"hello", "hello", "hello", "hello", "init"}
	wantErrors     = []string{"PaymentDeclinedError"}
	wantSeverities = map[string]int{"DEBUG": 12, "INFO": 23, "WARN": 5, "ERROR": 2}
	wantMetrics    = []string{
		"aws.lambda.billed_duration", "aws.lambda.logs_dropped", "aws.lambda.logs_dropped_bytes",
		"aws.lambda.max_memory_used", "aws.lambda.out_of_memory", "faas.coldstarts", "faas.errors",
		"faas.init_duration", "faas.invocations", "faas.invoke_duration", "faas.mem_usage",
		"faas.timeouts", "lambda_otel.events.received", "lambda_otel.exported",
	}
)

func (r received) check(t *testing.T, service string) {
	t.Helper()
	if !slices.Equal(r.spans, wantSpans) {
		t.Errorf("span names = %v, want %v", r.spans, wantSpans)
	}
	if !slices.Equal(r.errors, wantErrors) {
		t.Errorf("failed spans' status = %v, want %v", r.errors, wantErrors)
	}
	if len(r.traces) != 4 {
		t.Errorf("%d traces, want one per invocation with init in the first", len(r.traces))
	}
	if !maps.Equal(r.severities, wantSeverities) {
		t.Errorf("log records by severity = %v, want %v", r.severities, wantSeverities)
	}
	if !slices.Equal(r.metrics, wantMetrics) {
		t.Errorf("metric names = %v, want %v", r.metrics, wantMetrics)
	}
	if !maps.Equal(r.services, map[string]bool{service: true}) {
		t.Errorf("service.name = %v, want %s", r.services, service)
	}
}

// downstreamTraces are the X-Ray trace ids the downstream service saw, as OTLP trace ids.
func downstreamTraces(t *testing.T, stderr string) []string {
	t.Helper()
	var ids []string
	for _, m := range regexp.MustCompile(`downstream: GET /inventory/\w+ X-Amzn-Trace-Id: Root=1-([0-9a-f]{8})-([0-9a-f]{24});`).FindAllStringSubmatch(stderr, -1) {
		ids = append(ids, m[1]+m[2])
	}
	if len(ids) != 3 {
		t.Errorf("the downstream saw %d requests with a trace header, want 3:\n%s", len(ids), stderr)
	}
	return ids
}

func TestDemoOnTheEmbeddedSink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr testbin.Buffer
	if err := run(t.Context(), Options{Bin: binDir, Out: out}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	traces, logs, metrics := readOTLP(t, filepath.Join(out, "otlp.jsonl"))
	got := summarise(traces, logs, metrics)
	got.check(t, "hello")
	for _, id := range downstreamTraces(t, stderr.String()) {
		if !got.traces[id] {
			t.Errorf("the downstream's trace %s is not one of the exported traces %v", id, got.traces)
		}
	}
	report := stdout.String()
	for _, want := range []string{
		"OTLP sink: 4 traces, 5 spans, 42 log records",
		"Error PaymentDeclinedError",
		"faas.invocations                   sum        4 {invocation}",
		"the environment ran without failures",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the printed report lacks %q:\n%s", want, report)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "events.jsonl")); err != nil {
		t.Errorf("the Telemetry API events were not kept: %v", err)
	}
}

func TestDemoToExternalBackend(t *testing.T) {
	rcv := otlptest.Start(t)
	env := []string{
		"HOME=/nowhere",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.HTTPEndpoint,
		"OTEL_SERVICE_NAME=checkout",
	}
	out := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr testbin.Buffer
	if err := run(t.Context(), Options{Bin: binDir, Out: out, External: true, Env: env}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	// The extension has exported everything before it exits, which the emulator waits for.
	got := summarise(rcv.Received())
	got.check(t, "checkout")
	if strings.Contains(stdout.String(), "OTLP sink:") {
		t.Errorf("the embedded sink ran although the export went to an external backend:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(out, "otlp.jsonl")); !os.IsNotExist(err) {
		t.Errorf("otlp.jsonl written for an external backend: %v", err)
	}
}

func TestDemoExternalNeedsAnEndpoint(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		ok   bool
	}{
		{"none", []string{"OTEL_SERVICE_NAME=x"}, false},
		{"empty", []string{"OTEL_EXPORTER_OTLP_ENDPOINT="}, false},
		{"not an OTEL variable", []string{"MY_OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1"}, false},
		{"general", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1"}, true},
		{"per signal", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:1/v1/traces"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hasEndpoint(otelVariables(tc.env)); got != tc.ok {
				t.Errorf("hasEndpoint = %v, want %v", got, tc.ok)
			}
		})
	}
	err := run(t.Context(), Options{Bin: binDir, Out: t.TempDir(), External: true}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Errorf("error = %v, want one naming OTEL_EXPORTER_OTLP_ENDPOINT", err)
	}
}

func TestDemoNamesAMissingProgram(t *testing.T) {
	err := run(t.Context(), Options{Bin: t.TempDir(), Out: filepath.Join(t.TempDir(), "demo")}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "lambda-otel") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("error = %v, want one naming the missing program and how to build it", err)
	}
}

// readOTLP reads the sink's OTLP JSON lines, one request per line, by signal.
func readOTLP(t *testing.T, path string) ([]ptrace.Traces, []plog.Logs, []pmetric.Metrics) {
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
