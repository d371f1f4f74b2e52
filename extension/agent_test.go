package extension

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

type agentRun struct {
	api  *lambdatest.Server
	logs *testbin.Buffer
	done chan error
}

// testConfig exports nothing and flushes only at shutdown, as the tests of the intake
// need; the flush tests set their own.
func testConfig() Config {
	c := DefaultConfig()
	c.ListenerPort = 0
	c.LogLevel = slog.LevelDebug
	c.Export.Exporters = nil
	c.Flush = Flush{Mode: FlushShutdown}
	c.Receiver.HTTP = false // the receiver's tests turn it on, on a free port
	return c
}

func startAgent(t *testing.T, apiOpts lambdatest.Options, cfg Config, cfgErr error, opts ...func(*Options)) *agentRun {
	t.Helper()
	api := fakeAPI(t, apiOpts)
	log, logs := testLogger(slog.LevelDebug)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &agentRun{api: api, logs: logs, done: make(chan error, 1)}
	o := Options{RuntimeAPI: api.Addr(), Name: "lambda-otel", Config: cfg, ConfigErr: cfgErr, Logger: log}
	for _, opt := range opts {
		opt(&o)
	}
	go func() { r.done <- Run(ctx, o) }()
	return r
}

func (r *agentRun) shutdown(t *testing.T, ctx context.Context) {
	t.Helper()
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	dl := strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)
	if err := r.api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":`+dl+`}`)); err != nil {
		t.Fatal(err)
	}
	if err := lambdatest.Recv(t, ctx, r.done, "Run to return"); err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// shutdownLine finds the debug line written at shutdown.
func shutdownLine(t *testing.T, logs string) (line struct {
	Buffered int               `json:"buffered"`
	ByType   map[string]int    `json:"byType"`
	Counts   map[string]uint64 `json:"counts"`
}) {
	t.Helper()
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, `"msg":"shutdown"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
			return line
		}
	}
	t.Fatalf("no shutdown line in:\n%s", logs)
	return line
}

// exportTo points cfg's OTLP exporter at rcv, over protocol p.
func exportTo(t *testing.T, cfg *Config, rcv *otlptest.Receiver, p exporters.Protocol) {
	t.Helper()
	env := map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": string(p), "OTEL_EXPORTER_OTLP_ENDPOINT": rcv.HTTPEndpoint}
	if p == exporters.GRPC {
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://" + rcv.GRPCEndpoint
	}
	ec, err := exporters.LoadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Export = ec
}

func TestRunReceivesTelemetryUntilShutdown(t *testing.T) {
	ctx := testCtx(t)
	rcv := otlptest.Start(t)
	cfg := testConfig()
	exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
	r := startAgent(t, lambdatest.Options{AccountID: "123456789012"}, cfg, nil)

	reg := lambdatest.Recv(t, ctx, r.api.Registers, "register")
	if reg.Name != "lambda-otel" || reg.AcceptFeatures != "accountId" || strings.Join(reg.Events, ",") != "INVOKE,SHUTDOWN" {
		t.Errorf("register %+v", reg)
	}
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
	b := sub.Body
	if sub.Identifier != "ext-lambda-otel" || b.SchemaVersion != "2022-12-13" || strings.Join(b.Types, ",") != "platform,function,extension" ||
		b.Buffering.TimeoutMs != 25 || b.Buffering.MaxItems != 10000 || b.Buffering.MaxBytes != 262144 ||
		b.Destination.Protocol != "HTTP" || !strings.HasPrefix(b.Destination.URI, "http://") {
		t.Errorf("subscribe %+v", sub)
	}

	for _, f := range []string{"start.json", "function-text.json", "function-json.json", "runtimeDone.json"} {
		body, err := os.ReadFile(filepath.Join("..", "telemetry", "testdata", "events", f))
		if err != nil {
			t.Fatal(err)
		}
		if status, err := lambdatest.Deliver(ctx, sub, append(append([]byte("["), body...), ']')); err != nil || status != 200 {
			t.Fatalf("delivering %s: %d %v", f, status, err)
		}
	}
	if status, err := lambdatest.Deliver(ctx, sub, []byte("{broken")); err != nil || status != 200 {
		t.Fatalf("delivering a broken batch: %d %v", status, err)
	}

	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1", "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	r.shutdown(t, ctx)

	line := shutdownLine(t, r.logs.String())
	if line.Buffered != 4 || line.ByType["platform.start"] != 1 || line.ByType["function"] != 2 || line.ByType["platform.runtimeDone"] != 1 {
		t.Errorf("shutdown line %+v", line)
	}
	if line.Counts["batches"] != 5 || line.Counts["events"] != 4 || line.Counts["dropped_malformed_batch"] != 1 ||
		line.Counts["dropped_no_exporter"] != 0 {
		t.Errorf("counts %+v", line.Counts)
	}
	// The drop is also told at the default level, once, for a backend that never gets the metric.
	if n := strings.Count(r.logs.String(), `"level":"WARN","msg":"telemetry dropped before export","reason":"malformed_batch","batches":1,`); n != 1 {
		t.Errorf("the malformed batch was warned of %d times, want once:\n%s", n, r.logs.String())
	}
	// The invocation never got its report: its span is still exported, at shutdown.
	if spans, logs, points := rcv.Counts(); spans != 1 || logs != 4 || points == 0 {
		t.Errorf("the backend received %d spans, %d log records, %d points; want 1, 4 and some", spans, logs, points)
	}
	if _, err := lambdatest.Deliver(ctx, sub, []byte("[]")); err == nil {
		t.Error("the listener still answers after shutdown")
	}
}

// TestRunWaitsForTheLastReport checks that the platform.report of the last invocation,
// which the platform sends only after SHUTDOWN, is still received.
func TestRunWaitsForTheLastReport(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig()
	cfg.Buffering.TimeoutMs = telemetry.MaxTimeoutMs // only the report may end the wait early
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "last"}); err != nil {
		t.Fatal(err)
	}
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	dl := strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)
	if err := r.api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":`+dl+`}`)); err != nil {
		t.Fatal(err)
	}
	for _, batch := range []string{
		`[{"time":"2022-10-12T00:01:15.000Z","type":"platform.report","record":{"requestId":"earlier","status":"success","metrics":{}}}]`,
		`[{"time":"2022-10-12T00:01:15.000Z","type":"platform.report","record":{"requestId":"last","status":"success","metrics":{}}}]`,
	} {
		if status, err := lambdatest.Deliver(ctx, sub, []byte(batch)); err != nil || status != 200 {
			t.Fatalf("delivering after SHUTDOWN: %d %v", status, err)
		}
	}
	if err := lambdatest.Recv(t, ctx, r.done, "Run to return"); err != nil {
		t.Fatal(err)
	}
	line := shutdownLine(t, r.logs.String())
	if line.ByType["platform.report"] != 2 {
		t.Errorf("reports received: %+v", line.ByType)
	}
	if line.Counts["dropped_no_exporter"] != 2 {
		t.Errorf("with no exporter, %d events were counted as dropped for want of one; want 2", line.Counts["dropped_no_exporter"])
	}
}

func TestRunFailsOpen(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name     string
		api      lambdatest.Options
		cfg      func(*Config)
		cfgErr   error
		wantLog  []string
		wantSubs bool
	}{
		{"subscription accepted by a local emulator", lambdatest.Options{SubscribeStatus: 202, SubscribeBody: `{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}`},
			nil, nil, []string{"without a promise of delivery", "Telemetry.NotSupported"}, true},
		{"subscription refused", lambdatest.Options{SubscribeStatus: 400, SubscribeBody: `{"errorType":"ValidationError","errorMessage":"URI port is not provided"}`},
			nil, nil, []string{"subscription was refused", "ValidationError", "URI port is not provided"}, true},
		{"subscription failing with a plain body", lambdatest.Options{SubscribeStatus: 500, SubscribeBody: `oops`},
			nil, nil, []string{"subscription was refused", "HTTP 500: oops"}, true},
		{"listener port taken", lambdatest.Options{}, func(c *Config) { c.ListenerPort = busyPort },
			nil, []string{"starting the listener failed", "address already in use"}, false},
		{"configuration errors", lambdatest.Options{}, nil, errors.New(EnvBufferTimeoutMs + `="5" is not valid`),
			[]string{"configuration has errors", EnvBufferTimeoutMs}, true},
		{"no telemetry types", lambdatest.Options{}, func(c *Config) { c.Streams = nil }, nil, []string{"not subscribing"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			r := startAgent(t, tt.api, cfg, tt.cfgErr)
			lambdatest.Recv(t, ctx, r.api.Registers, "register")
			if tt.wantSubs {
				lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
			}
			// The extension still answers events, so the function is unharmed.
			lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
			if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1"}); err != nil {
				t.Fatal(err)
			}
			r.shutdown(t, ctx)
			logs := r.logs.String()
			for _, w := range tt.wantLog {
				if !strings.Contains(logs, w) {
					t.Errorf("logs lack %q:\n%s", w, logs)
				}
			}
			if n := strings.Count(logs, tt.wantLog[0]); n != 1 {
				t.Errorf("%q logged %d times, want once", tt.wantLog[0], n)
			}
			if !tt.wantSubs && len(r.api.Subscribes) != 0 {
				t.Error("subscribed without a listener")
			}
		})
	}
}

func TestRunRegisterFails(t *testing.T) {
	ctx := testCtx(t)
	r := startAgent(t, lambdatest.Options{RegisterStatus: http.StatusInternalServerError}, testConfig(), nil)
	err := lambdatest.Recv(t, ctx, r.done, "Run to return")
	if err == nil || !strings.Contains(err.Error(), `registering extension "lambda-otel"`) {
		t.Errorf("Run returned %v", err)
	}
}

func TestRunWithoutRuntimeAPI(t *testing.T) {
	err := Run(testCtx(t), Options{Name: "lambda-otel", Config: testConfig()})
	if err == nil || !strings.Contains(err.Error(), "AWS_LAMBDA_RUNTIME_API") {
		t.Errorf("Run returned %v", err)
	}
}

// TestRunStopsWithContext covers a local stop (SIGTERM) before any SHUTDOWN: the listener
// must still be closed, which goleak checks.
func TestRunStopsWithContext(t *testing.T) {
	ctx := testCtx(t)
	api := fakeAPI(t, lambdatest.Options{})
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(rctx, Options{RuntimeAPI: api.Addr(), Name: "lambda-otel", Config: testConfig()}) }()
	lambdatest.Recv(t, ctx, api.Subscribes, "subscribe")
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	cancel()
	if err := lambdatest.Recv(t, ctx, done, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
