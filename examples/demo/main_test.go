package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

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

// check asserts the demo's promise on what a backend received.
func check(t *testing.T, r otlptest.Summary, service string) {
	t.Helper()
	if !slices.Equal(r.Spans, wantSpans) {
		t.Errorf("span names = %v, want %v", r.Spans, wantSpans)
	}
	if !slices.Equal(r.Errors, wantErrors) {
		t.Errorf("failed spans' status = %v, want %v", r.Errors, wantErrors)
	}
	if len(r.Traces) != 4 {
		t.Errorf("%d traces, want one per invocation with init in the first", len(r.Traces))
	}
	if !maps.Equal(r.Severities, wantSeverities) {
		t.Errorf("log records by severity = %v, want %v", r.Severities, wantSeverities)
	}
	if !slices.Equal(r.Metrics, wantMetrics) {
		t.Errorf("metric names = %v, want %v", r.Metrics, wantMetrics)
	}
	if !maps.Equal(r.Services, map[string]bool{service: true}) {
		t.Errorf("service.name = %v, want %s", r.Services, service)
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
	got := otlptest.Summarize(otlptest.ReadFile(t, filepath.Join(out, "otlp.jsonl")))
	check(t, got, "hello")
	for _, id := range downstreamTraces(t, stderr.String()) {
		if !got.Traces[id] {
			t.Errorf("the downstream's trace %s is not one of the exported traces %v", id, got.Traces)
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
	check(t, otlptest.Summarize(rcv.Received()), "checkout")
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
