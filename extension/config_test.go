package extension

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
	"github.com/lambda-otel/lambda-otel/receiver"
	"github.com/lambda-otel/lambda-otel/telemetry"
	"github.com/lambda-otel/lambda-otel/telemetry/convert"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("got %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	if c.Buffering.TimeoutMs != 25 || c.ListenerPort != 4243 || len(c.Streams) != 3 {
		t.Errorf("defaults %+v", c)
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{
		EnvTelemetryTypes:                 " Platform, function ,platform",
		EnvBufferTimeoutMs:                "100",
		EnvBufferMaxItems:                 "1000",
		EnvBufferMaxBytes:                 "1048576",
		EnvListenerPort:                   "0",
		EnvQueueMaxBytes:                  "8388608",
		EnvLogLevel:                       "DEBUG",
		EnvPhaseSpans:                     "Children",
		EnvFlush:                          "Periodic, 5000",
		EnvFlushTimeoutMs:                 "250",
		EnvPlatformLogs:                   "report,start",
		EnvFaaSTrigger:                    "HTTP",
		EnvMetricsTemporality:             "lowmemory",
		EnvServiceName:                    "checkout",
		EnvResourceAttributes:             "team=payments%20core",
		EnvReceiver:                       "gRPC:14317, http",
		"AWS_LAMBDA_FUNCTION_NAME":        "my-function",
		"AWS_LAMBDA_FUNCTION_VERSION":     "7",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_DEFAULT_REGION":              "eu-west-1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Streams:       []telemetry.Stream{telemetry.StreamPlatform, telemetry.StreamFunction},
		Buffering:     telemetry.Buffering{MaxItems: 1000, MaxBytes: 1048576, TimeoutMs: 100},
		ListenerPort:  0,
		QueueMaxBytes: 8388608,
		LogLevel:      slog.LevelDebug,
		Convert: convert.Config{
			PhaseSpans:   convert.ChildSpans,
			PlatformLogs: mustPlatformLogs(t, "report,start"),
			Temporality:  convert.Delta,
			Trigger:      "http",
		},
		Flush:          Flush{Mode: FlushPeriodic, Period: 5 * time.Second},
		FlushTimeoutMs: 250,
		Export:         exporters.DefaultConfig(),
		Receiver:       receiver.Config{HTTP: true, GRPC: true, HTTPPort: 4318, GRPCPort: 14317},
		Resource: convert.Resource{
			ServiceName:     "checkout",
			Attributes:      []convert.Attribute{{Key: "team", Value: "payments core"}},
			FunctionName:    "my-function",
			FunctionVersion: "7",
			Region:          "eu-west-1",
			MemoryMB:        256,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func mustPlatformLogs(t *testing.T, s string) convert.PlatformLogs {
	t.Helper()
	p, err := convert.ParsePlatformLogs(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigNone(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{EnvTelemetryTypes: "none"}))
	if err != nil || len(c.Streams) != 0 {
		t.Errorf("got %v, %v", c.Streams, err)
	}
}

// readmeVariables returns the variables of the README's configuration table.
func readmeVariables(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var vars []string
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`((?:LAMBDA_)?OTEL_[A-Z_]+)`").FindAllStringSubmatch(first, -1) {
			vars = append(vars, m[1])
		}
	}
	if len(vars) < 20 {
		t.Fatalf("found only %d variables in the README's table", len(vars))
	}
	return vars
}

// anyValue lists the variables of the README's table that no value is bad for, and why.
var anyValue = map[string]string{
	EnvServiceName:          "any string is a service name",
	exporters.EnvExportFile: "any path is accepted here; one that cannot be opened is reported when the exporter starts (exporters.TestNewNamesTheExportFile)",
}

// badValue is a bad value of one variable, with what LoadConfig must make of it.
type badValue struct {
	variable, value string
	// extra is set beside the bad value, to make its default visible.
	extra map[string]string
	want  []string
	// field is what the variable sets; it must be as in DefaultConfig, unless def says
	// what stands in instead.
	field func(Config) any
	def   any
}

// badValues are the cases of TestLoadConfigBadValues: at least one for every variable of
// the README's configuration table but those of anyValue.
func badValues() []badValue {
	traces := func(c Config) exporters.Target { return c.Export.OTLP[exporters.Traces] }
	return []badValue{
		{variable: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "ftp://collector:4318", want: []string{"want an http:// or https:// URL", "nothing is exported to it"},
			// Not the default: sending the function's telemetry to localhost instead of the
			// backend meant would be no better, so nothing is sent.
			field: func(c Config) any { return traces(c).URL }, def: ""},
		{variable: "OTEL_EXPORTER_OTLP_PROTOCOL", value: "http/xml", want: []string{`want "http/protobuf", "http/json" or "grpc"`, "using http/protobuf"},
			field: func(c Config) any { return traces(c).Protocol }},
		{variable: "OTEL_EXPORTER_OTLP_HEADERS", value: "x-api-key", want: []string{"entry 1 is not key=value", "want comma-separated key=value pairs", "sending no headers"},
			field: func(c Config) any { return traces(c).Headers }},
		{variable: "OTEL_EXPORTER_OTLP_LOGS_HEADERS", value: "x-api-key=a%zz", want: []string{"not percent-encoded", "want comma-separated key=value pairs"},
			field: func(c Config) any { return c.Export.OTLP[exporters.Logs].Headers }},
		{variable: "OTEL_EXPORTER_OTLP_COMPRESSION", value: "brotli", want: []string{`want "gzip" or "none"`, "using none"},
			field: func(c Config) any { return traces(c).Gzip }},
		{variable: "OTEL_EXPORTER_OTLP_TIMEOUT", value: "soon", want: []string{"want a positive number of milliseconds", "using 10000"},
			field: func(c Config) any { return traces(c).Timeout }},
		{variable: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value: "0", want: []string{"want a positive number of milliseconds"},
			field: func(c Config) any { return traces(c).Timeout }},
		{variable: "OTEL_EXPORTER_OTLP_CERTIFICATE", value: "/nonexistent/ca.pem", want: []string{"want a PEM file of CA certificates", "using the system's roots"},
			field: func(c Config) any { return traces(c).TLS == nil || traces(c).TLS.RootCAs == nil }},
		{variable: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", value: "/client.pem", want: []string{"must be set together", "both or neither", "no client certificate"},
			field: func(c Config) any { return traces(c).TLS == nil || len(traces(c).TLS.Certificates) == 0 }},
		{variable: "OTEL_EXPORTER_OTLP_CLIENT_KEY", value: "/client-key.pem", want: []string{"must be set together", "both or neither", "no client certificate"},
			field: func(c Config) any { return traces(c).TLS == nil || len(traces(c).TLS.Certificates) == 0 }},
		{variable: "OTEL_EXPORTER_OTLP_INSECURE", value: "yes", extra: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
			want: []string{`want "true" or "false"`, "using false"}, field: func(c Config) any { return traces(c).URL }, def: "https://collector:4317"},
		{variable: EnvResourceAttributes, value: "team", want: []string{"key=value pairs", `"team" is not a key=value pair`},
			field: func(c Config) any { return c.Resource.Attributes }},
		{variable: EnvMetricsTemporality, value: "sometimes", want: []string{`"cumulative", "delta" or "lowmemory"`, "default cumulative"},
			field: func(c Config) any { return c.Convert.Temporality }},
		{variable: EnvFlush, value: "periodic", want: []string{`"periodic,<milliseconds>"`, "default adaptive"},
			field: func(c Config) any { return c.Flush }},
		{variable: EnvFlush, value: "periodic,-5", want: []string{`"adaptive", "end"`}, field: func(c Config) any { return c.Flush }},
		{variable: EnvFlush, value: "sometimes", want: []string{`"adaptive", "end"`}, field: func(c Config) any { return c.Flush }},
		{variable: EnvFlushTimeoutMs, value: "0", want: []string{"from 10 to 60000", "default 1000"},
			field: func(c Config) any { return c.FlushTimeoutMs }},
		{variable: EnvFlushTimeoutMs, value: "60001", want: []string{"from 10 to 60000"}, field: func(c Config) any { return c.FlushTimeoutMs }},
		{variable: exporters.EnvExporters, value: "otlp,kafka", want: []string{`unknown exporter "kafka"`, `"otlp", "file", "console", or "none"`, "default otlp"},
			field: func(c Config) any { return c.Export.Exporters }},
		{variable: EnvTelemetryTypes, value: "platform,logs", want: []string{`"platform", "function", "extension", or "none"`, "default platform,function,extension"},
			field: func(c Config) any { return c.Streams }},
		{variable: EnvPhaseSpans, value: "nested", want: []string{`"events" or "children"`, "default events"},
			field: func(c Config) any { return c.Convert.PhaseSpans }},
		{variable: EnvPlatformLogs, value: "report,bogus", want: []string{`"all", "none"`, "default all"},
			field: func(c Config) any { return c.Convert.PlatformLogs }},
		{variable: EnvFaaSTrigger, value: "sqs", want: []string{`"datasource", "http"`, "default none"},
			field: func(c Config) any { return c.Convert.Trigger }},
		{variable: EnvBufferTimeoutMs, value: "5", want: []string{"from 25 to 30000", "default 25"},
			field: func(c Config) any { return c.Buffering.TimeoutMs }},
		{variable: EnvBufferTimeoutMs, value: "fast", want: []string{"from 25 to 30000"}, field: func(c Config) any { return c.Buffering.TimeoutMs }},
		{variable: EnvBufferMaxItems, value: "20000", want: []string{"from 1000 to 10000", "default 10000"},
			field: func(c Config) any { return c.Buffering.MaxItems }},
		{variable: EnvBufferMaxBytes, value: "1024", want: []string{"from 262144 to 1048576", "default 262144"},
			field: func(c Config) any { return c.Buffering.MaxBytes }},
		{variable: EnvListenerPort, value: "9001", want: []string{"except 9001", "default 4243"}, field: func(c Config) any { return c.ListenerPort }},
		{variable: EnvListenerPort, value: "70000", want: []string{"from 0 to 65535"}, field: func(c Config) any { return c.ListenerPort }},
		{variable: EnvListenerPort, value: "-1", want: []string{"from 0 to 65535"}, field: func(c Config) any { return c.ListenerPort }},
		{variable: EnvQueueMaxBytes, value: "1048576", want: []string{"from 4194304 to 536870912", "default 16777216"},
			field: func(c Config) any { return c.QueueMaxBytes }},
		{variable: EnvQueueMaxBytes, value: "99999999999999999999", want: []string{"an integer from"}, field: func(c Config) any { return c.QueueMaxBytes }},
		{variable: EnvLogLevel, value: "verbose", want: []string{`"debug", "info", "warn", "error"`, "default info"},
			field: func(c Config) any { return c.LogLevel }},
		{variable: EnvReceiver, value: "http,udp", want: []string{`unknown protocol "udp"`, `"http" and "grpc", each with an optional ":port"`, "default http"},
			field: func(c Config) any { return c.Receiver }},
		{variable: EnvReceiver, value: "http,http:4000", want: []string{"http is given twice"}, field: func(c Config) any { return c.Receiver }},
		{variable: EnvReceiver, value: "grpc:9001", want: []string{`port "9001" of grpc is not a port`}, field: func(c Config) any { return c.Receiver }},
		{variable: EnvReceiver, value: "grpc:http", want: []string{`port "http" of grpc`}, field: func(c Config) any { return c.Receiver }},
		{variable: EnvReceiver, value: "http:4317,grpc", want: []string{"cannot share port 4317"}, field: func(c Config) any { return c.Receiver }},
		{variable: EnvLogLevel, value: "info+2", want: []string{`"debug", "info", "warn", "error"`}, field: func(c Config) any { return c.LogLevel }},
	}
}

// TestLoadConfigBadValues gives each variable of the README's configuration table a bad
// value and checks that the problem is reported once, naming the variable and what it
// accepts; that the default stands in; and that a good value beside it survives. That
// the function still runs is TestRunFailsOpen's part.
func TestLoadConfigBadValues(t *testing.T) {
	tests := badValues()

	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.variable] = true
	}
	for _, v := range readmeVariables(t) {
		if !covered[v] && anyValue[v] == "" {
			t.Errorf("%s is in the README's configuration table but has no bad-value case", v)
		}
	}

	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			// A good value beside the bad one must survive.
			good, goodValue := EnvBufferMaxItems, 1000
			if tt.variable == EnvBufferMaxItems {
				good, goodValue = EnvBufferTimeoutMs, 1000
			}
			vars := map[string]string{tt.variable: tt.value, good: strconv.Itoa(goodValue)}
			maps.Copy(vars, tt.extra)
			c, err := LoadConfig(env(vars))
			if err == nil {
				t.Fatal("no error")
			}
			var about []string
			for _, e := range leaves(err) {
				if strings.Contains(e.Error(), tt.variable) {
					about = append(about, e.Error())
				}
			}
			if len(about) != 1 {
				t.Fatalf("want the problem reported once, naming %s; got %q", tt.variable, about)
			}
			msg := about[0]
			if !strings.Contains(msg, "want") {
				t.Errorf("the message does not say what is valid: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message lacks %q: %s", w, msg)
				}
			}
			def := tt.def
			if def == nil {
				def = tt.field(DefaultConfig())
			}
			if got := tt.field(c); !reflect.DeepEqual(got, def) {
				t.Errorf("the setting is %#v, want the default %#v", got, def)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("the config after a bad value does not validate: %v", err)
			}
			got := c.Buffering.MaxItems
			if good == EnvBufferTimeoutMs {
				got = c.Buffering.TimeoutMs
			}
			if got != goodValue {
				t.Errorf("%s lost its value: %d", good, got)
			}
		})
	}
}

func TestLoadConfigReportsEveryBadValue(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{EnvBufferTimeoutMs: "1", EnvListenerPort: "x", EnvLogLevel: "loud"}))
	for _, v := range []string{EnvBufferTimeoutMs, EnvListenerPort, EnvLogLevel} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Buffering.TimeoutMs = 10
	c.ListenerPort = 9001
	c.Streams = append(c.Streams, "logs")
	c.Convert.PhaseSpans = 7
	c.Convert.Trigger = "sqs"
	err := c.Validate()
	for _, want := range []string{EnvBufferTimeoutMs + "=10", EnvListenerPort + "=9001", `has "logs"`, EnvPhaseSpans, EnvFaaSTrigger + `="sqs"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
}

// TestRunWithEveryBadValue starts the extension with every variable bad at once, as
// LoadConfig reads them: it logs the problems in one line, naming each variable, and
// carries on answering events, so the function is unharmed.
func TestRunWithEveryBadValue(t *testing.T) {
	vars := map[string]string{}
	for _, b := range badValues() {
		if _, ok := vars[b.variable]; !ok {
			vars[b.variable] = b.value
		}
	}
	cfg, cfgErr := LoadConfig(env(vars))
	if cfgErr == nil {
		t.Fatal("no configuration error")
	}
	cfg.ListenerPort = 0       // the default port may be taken on this machine
	cfg.Receiver.HTTP = false  // as may the receiver's
	cfg.Export.Exporters = nil // nothing to send to
	cfg.Flush = Flush{Mode: FlushShutdown}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	api := lambdatest.New(lambdatest.Options{})
	defer api.Close()
	var logs testbin.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{RuntimeAPI: api.Addr(), Name: "lambda-otel", Config: cfg, ConfigErr: cfgErr,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	}()
	lambdatest.Recv(t, ctx, api.Registers, "register")
	lambdatest.Recv(t, ctx, api.Subscribes, "subscribe")
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	if err := api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1"}); err != nil {
		t.Fatal(err)
	}
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	dl := strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)
	if err := api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":`+dl+`}`)); err != nil {
		t.Fatal(err)
	}
	if err := lambdatest.Recv(t, ctx, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out := logs.String()
	if n := strings.Count(out, "configuration has errors"); n != 1 {
		t.Errorf("the configuration errors were logged %d times, want once:\n%s", n, out)
	}
	for v := range vars {
		if !strings.Contains(out, v) {
			t.Errorf("the log does not name %s:\n%s", v, out)
		}
	}
}
