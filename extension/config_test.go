package extension

import (
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
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

// TestLoadConfigBadValues checks that each bad value is named with its valid values and
// replaced by its default, leaving the other settings as given.
func TestLoadConfigBadValues(t *testing.T) {
	tests := []struct {
		variable, value string
		want            []string
	}{
		{EnvBufferTimeoutMs, "5", []string{"from 25 to 30000", "default 25"}},
		{EnvBufferTimeoutMs, "fast", []string{"from 25 to 30000"}},
		{EnvBufferMaxItems, "20000", []string{"from 1000 to 10000", "default 10000"}},
		{EnvBufferMaxBytes, "1024", []string{"from 262144 to 1048576", "default 262144"}},
		{EnvListenerPort, "9001", []string{"except 9001", "default 4243"}},
		{EnvListenerPort, "70000", []string{"from 0 to 65535"}},
		{EnvQueueMaxBytes, "-1", []string{"an integer from"}},
		{EnvTelemetryTypes, "platform,logs", []string{`"platform", "function", "extension", or "none"`, "default platform,function,extension"}},
		{EnvLogLevel, "verbose", []string{`"debug", "info", "warn", "error"`}},
		{EnvLogLevel, "info+2", []string{`"debug", "info", "warn", "error"`}},
		{EnvPhaseSpans, "nested", []string{`"events" or "children"`, "default events"}},
		{EnvPlatformLogs, "report,bogus", []string{`"all", "none"`, "default all"}},
		{EnvFaaSTrigger, "sqs", []string{`"datasource", "http"`}},
		{EnvMetricsTemporality, "sometimes", []string{`"cumulative", "delta" or "lowmemory"`, "default cumulative"}},
		{EnvResourceAttributes, "team", []string{"key=value pairs", `"team" is not a key=value pair`}},
		{EnvFlush, "periodic", []string{`"periodic,<milliseconds>"`, "default adaptive"}},
		{EnvFlush, "sometimes", []string{`"adaptive", "end"`}},
		{EnvFlushTimeoutMs, "0", []string{"from 10 to 60000", "default 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			// A good value beside the bad one must survive.
			good, goodValue := EnvBufferMaxItems, 1000
			if tt.variable == EnvBufferMaxItems {
				good, goodValue = EnvBufferTimeoutMs, 1000
			}
			c, err := LoadConfig(env(map[string]string{tt.variable: tt.value, good: strconv.Itoa(goodValue)}))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.variable+`="`+tt.value+`"`) {
				t.Errorf("error does not name the variable and value: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q: %s", w, msg)
				}
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
