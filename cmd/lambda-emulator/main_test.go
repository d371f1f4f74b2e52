package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// bins are the real programs: the emulator, the extension and the example function.
var bins struct{ emulator, extension, function string }

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		bins.emulator = filepath.Join(dir, "lambda-emulator")
		bins.extension = filepath.Join(dir, "opt", "extensions", "lambda-otel")
		bins.function = filepath.Join(dir, "task", "bootstrap")
		return testbin.Build(map[string]string{
			bins.emulator:  "github.com/lambda-otel/lambda-otel/cmd/lambda-emulator",
			bins.extension: "github.com/lambda-otel/lambda-otel/cmd/lambda-otel",
			bins.function:  "github.com/lambda-otel/lambda-otel/examples/hello",
		}, nil)
	}))
}

// emulatorCmd runs the emulator on the built function and extension.
func emulatorCmd(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{
		"--extensions-dir", filepath.Dir(bins.extension), "--task-dir", filepath.Dir(bins.function),
		"--function-name", "hello-fn",
		// Test packages run at once, each with an extension; 4243 and the receiver's 4318
		// can be held by only one.
		"--env", "LAMBDA_OTEL_LISTENER_PORT=0", "--env", "LAMBDA_OTEL_RECEIVER=none",
	}
	return exec.CommandContext(ctx, bins.emulator, append(base, args...)...)
}

// The extension, run by the emulator, exports each invocation's span, the function's logs
// and the metrics to the collector's own OTLP receiver.
func TestExtensionThroughEmulatorIntoCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rcv := otlptest.Start(t)
	var stdout, stderr bytes.Buffer
	cmd := emulatorCmd(ctx, "--invoke", `{"action":"ok"}`, "--invocations", "3", "--no-otlp-sink",
		"--env", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.HTTPEndpoint, "--env", "OTEL_SERVICE_NAME=hello-service")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lambda-emulator: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	// Everything is exported before the extension exits, which the emulator waits for.
	spans, logs, points := rcv.Counts()
	if spans != 4 || logs < 3*5 || points == 0 {
		t.Errorf("received %d spans (want init + 3 invocations), %d log records, %d points\n%s", spans, logs, points, stderr.String())
	}
	got := otlptest.Summarize(rcv.Received())
	if !maps.Equal(got.Services, map[string]bool{"hello-service": true}) {
		t.Errorf("service.name = %v", got.Services)
	}
	if !slices.Equal(got.Spans, []string{"hello-fn", "hello-fn", "hello-fn", "init"}) {
		t.Errorf("span names = %v", got.Spans)
	}
	if sev := got.Severities; sev["WARN"] == 0 || sev["INFO"] == 0 || sev["DEBUG"] == 0 {
		t.Errorf("log severities = %v", sev)
	}
	for _, want := range []string{"faas.invocations", "faas.invoke_duration", "faas.coldstarts"} {
		if !slices.Contains(got.Metrics, want) {
			t.Errorf("metric %s not received; got %v", want, got.Metrics)
		}
	}
	if !strings.Contains(stdout.String(), "the environment ran without failures") {
		t.Errorf("summary:\n%s", stdout.String())
	}
}

// The embedded sink receives the extension's export, prints the trace tree and writes OTLP
// JSON lines; a crash makes the run fail.
func TestSinkAndExitStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	otlpOut, eventsOut := filepath.Join(dir, "otlp.jsonl"), filepath.Join(dir, "events.jsonl")
	var stdout, stderr bytes.Buffer
	cmd := emulatorCmd(ctx, "--invoke", `{"action":"crash"}`, "--otlp-sink", "127.0.0.1:0",
		"--otlp-out", otlpOut, "--events-out", eventsOut)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1 for a crashed runtime\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"Runtime.ExitError", "the environment FAILED", "OTLP sink:", "Error Runtime.ExitError"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "Status: error\tError Type: Runtime.ExitError") {
		t.Errorf("no REPORT line with the crash in stderr:\n%s", stderr.String())
	}
	if traces, logs, metrics := otlptest.ReadFile(t, otlpOut); len(traces) == 0 || len(logs) == 0 || len(metrics) == 0 {
		t.Errorf("--otlp-out lines by signal: %d traces, %d logs, %d metrics", len(traces), len(logs), len(metrics))
	}
	if events := strings.Join(readLines(t, eventsOut), "\n"); !strings.Contains(events, `"type":"platform.runtimeDone"`) || !strings.Contains(events, `"status":"failure"`) {
		t.Errorf("--events-out lacks the failed runtimeDone:\n%s", events)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// startServer starts cmd, the emulator in server mode, and returns its invoke endpoint as
// it prints it. The rest of its stderr goes to log, whole once logDone is closed.
func startServer(t *testing.T, cmd *exec.Cmd) (url string, log *testbin.Buffer, logDone <-chan struct{}) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addr := regexp.MustCompile(`(http://127\.0\.0\.1:\d+/\S+)`)
	for url == "" && lines.Scan() {
		url = addr.FindString(lines.Text())
	}
	log = &testbin.Buffer{}
	done := make(chan struct{})
	go func() { io.Copy(log, stderr); close(done) }()
	if url == "" {
		t.Fatal("the emulator never printed its invoke endpoint")
	}
	return url, log, done
}

// The server mode answers the invoke endpoint as the Runtime Interface Emulator does and
// stops by itself after --invocations.
func TestInvokeEndpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := emulatorCmd(ctx, "--listen", "127.0.0.1:0", "--invocations", "3", "--no-otlp-sink", "--tracing", "Active")
	cmd.Stdout = io.Discard
	url, _, _ := startServer(t, cmd)
	post := func(typ, body string, header ...string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if typ != "" {
			req.Header.Set("X-Amz-Invocation-Type", typ)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tests := []struct {
		name, typ, body string
		status          int
		functionError   string
		bodyHas         string
	}{
		{"request-response", "", `{"action":"ok"}`, 200, "", `"ok":true`},
		{"function error", "RequestResponse", `{"action":"error"}`, 200, "Unhandled", `"errorType":"PaymentDeclinedError"`},
		{"dry run", "DryRun", `{}`, 204, "", ""},
		{"unknown type", "Later", `{}`, 400, "", "X-Amz-Invocation-Type"},
		{"last", "", `{"action":"ok"}`, 200, "", `"ok":true`},
	}
	for _, tt := range tests {
		resp := post(tt.typ, tt.body, "X-Amzn-Trace-Id", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Sampled=1")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("X-Amz-Function-Error") != tt.functionError || !strings.Contains(string(b), tt.bodyHas) {
			t.Errorf("%s: %d %q %s", tt.name, resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), b)
		}
		if tt.status == 200 && resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s: no X-Amzn-Requestid", tt.name)
		}
	}
	// Three invocations ran (the others were refused or dry runs): the emulator stops by itself.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the emulator did not stop after --invocations")
	}
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "--invoke") && !strings.Contains(out.String(), "-invoke") {
		t.Errorf("--help: %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"--task-dir", t.TempDir(), "--memory-mb", "64", "--no-otlp-sink", "--invoke", "{}"}, &out, &out); code != 1 || !strings.Contains(out.String(), "memory 64 MB: must be 128 to 10240") {
		t.Errorf("bad memory: %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"--timeout", "soon"}, &out, &out); code != 2 {
		t.Errorf("bad duration: %d\n%s", code, out.String())
	}
	badConfig := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(badConfig, []byte(`{"MaximumRetryAttempts":5}`), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--destination-url", "arn:aws:lambda:us-east-1:123456789012:function:f"}, 2, "must be ARN=URL"},
		{[]string{"--destination-url", "arn:aws:sqs:us-east-1:123456789012:q=http://127.0.0.1:1"}, 1, "the key must be a Lambda function ARN"},
		{[]string{"--async-time-scale", "-1"}, 1, "async time scale -1: must be more than 0"},
		{[]string{"--async-time-scale", "NaN"}, 1, "async time scale NaN: must be more than 0"},
		{[]string{"--dead-letter-arn", "arn:aws:sqs:us-east-1:123456789012:q.fifo"}, 1, "must be the ARN of a standard SQS queue or SNS topic"},
		{[]string{"--event-invoke-config", badConfig}, 1, "loading the event-invoke config: InvalidParameterValueException: 1 validation error detected: Value '5' at 'maximumRetryAttempts'"},
		{[]string{"--event-invoke-config", filepath.Join(t.TempDir(), "missing.json")}, 2, "reading --event-invoke-config"},
	} {
		out.Reset()
		args := append([]string{"--task-dir", t.TempDir(), "--no-otlp-sink", "--invoke", "{}"}, tt.args...)
		if code := run(t.Context(), args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: %d\n%s\nwant %d and %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}

// An asynchronous invocation through the real binaries: the failing event is retried twice
// with the same request id, the extension exports a span for each attempt, and the records
// reach the destination function's URL and the dead-letter queue's file.
func TestAsyncInvoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rcv := otlptest.Start(t)
	records := make(chan map[string]any, 2)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec map[string]any
		json.NewDecoder(r.Body).Decode(&rec)
		records <- rec
		w.WriteHeader(http.StatusAccepted)
	}))
	defer dest.Close()
	const (
		onSuccess = "arn:aws:lambda:us-east-1:123456789012:function:on-success"
		onFailure = "arn:aws:lambda:us-east-1:123456789012:function:on-failure"
		dlq       = "arn:aws:sqs:us-east-1:123456789012:dead-letters"
	)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, []byte(`{"FunctionName":"hello-fn","MaximumRetryAttempts":2,"DestinationConfig":{"OnSuccess":{"Destination":"`+onSuccess+`"},"OnFailure":{"Destination":"`+onFailure+`"}}}`), 0o644)
	cmd := emulatorCmd(ctx, "--listen", "127.0.0.1:0", "--no-otlp-sink", "--env", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.HTTPEndpoint,
		"--event-invoke-config", config, "--async-time-scale", "0.001", "--destinations-dir", dir, "--dead-letter-arn", dlq,
		"--destination-url", onSuccess+"="+dest.URL, "--destination-url", onFailure+"="+dest.URL)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	url, log, logDone := startServer(t, cmd)
	ids := map[string]string{}
	for _, action := range []string{"error", "ok"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"action":"`+action+`"}`))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("Event invoke of %s: %d", action, resp.StatusCode)
		}
		ids[action] = resp.Header.Get("X-Amzn-Requestid")
	}
	got := map[string]map[string]any{}
	for range 2 {
		select {
		case rec := <-records:
			got[fmt.Sprint(testbin.Field(rec, "requestContext", "condition"))] = rec
		case <-ctx.Done():
			t.Fatalf("records received: %v", got)
		}
	}
	if r := got["Success"]; testbin.Field(r, "requestContext", "requestId") != ids["ok"] || testbin.Field(r, "requestContext", "approximateInvokeCount") != 1.0 {
		t.Errorf("success record: %v", r)
	}
	if r := got["RetriesExhausted"]; testbin.Field(r, "requestContext", "requestId") != ids["error"] || testbin.Field(r, "requestContext", "approximateInvokeCount") != 3.0 {
		t.Errorf("failure record: %v", r)
	}
	cmd.Process.Signal(os.Interrupt)
	<-logDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
	if letters := readLines(t, filepath.Join(dir, "arn_aws_sqs_us-east-1_123456789012_dead-letters.ndjson")); len(letters) != 1 || !strings.Contains(letters[0], ids["error"]) {
		t.Errorf("dead letters: %v", letters)
	}
	// The extension, subscribed to the Telemetry API, exported one span per attempt.
	attempts := map[string]int{}
	traces, _, _ := rcv.Received()
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if id, ok := sp.Attributes().Get("faas.invocation_id"); ok {
						attempts[id.Str()]++
					}
				}
			}
		}
	}
	if attempts[ids["error"]] != 3 || attempts[ids["ok"]] != 1 {
		t.Errorf("spans per request id %v, want 3 for %s and 1 for %s\n%s", attempts, ids["error"], ids["ok"], log.String())
	}
	if out := stdout.String(); !strings.Contains(out, "async attempt 3") {
		t.Errorf("summary lacks the attempts:\n%s", out)
	}
}
