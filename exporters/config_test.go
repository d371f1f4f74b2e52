package exporters

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want [numSignals]string // URLs
		p    Protocol
	}{
		{"defaults", nil, [numSignals]string{"http://localhost:4318/v1/traces", "http://localhost:4318/v1/logs", "http://localhost:4318/v1/metrics"}, HTTPProtobuf},
		{"base with a path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com/api/"},
			[numSignals]string{"https://otlp.example.com/api/v1/traces", "https://otlp.example.com/api/v1/logs", "https://otlp.example.com/api/v1/metrics"}, HTTPProtobuf},
		{"per-signal endpoint used as it is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9000/ingest"},
			[numSignals]string{"http://collector:4318/v1/traces", "http://logs:9000/ingest", "http://collector:4318/v1/metrics"}, HTTPProtobuf},
		{"grpc default", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			[numSignals]string{"http://localhost:4317", "http://localhost:4317", "http://localhost:4317"}, GRPC},
		{"grpc without scheme is TLS unless insecure", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true"},
			[numSignals]string{"https://collector:4317", "https://collector:4317", "http://collector:4317"}, GRPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(lookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range Signals {
				if c.OTLP[s].URL != tt.want[s] || c.OTLP[s].Protocol != tt.p {
					t.Errorf("%s: %s %s, want %s %s", s, c.OTLP[s].Protocol, c.OTLP[s].URL, tt.p, tt.want[s])
				}
			}
		})
	}
}

func TestDefaultConfigIsLoadConfigOfNothing(t *testing.T) {
	c, err := LoadConfig(lookup(nil))
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("LoadConfig of an empty environment = %+v, %v; DefaultConfig = %+v", c, err, DefaultConfig())
	}
}

func TestLoadConfigSettings(t *testing.T) {
	c, err := LoadConfig(lookup(map[string]string{
		EnvExporters:                             "otlp, console,otlp",
		"OTEL_EXPORTER_OTLP_HEADERS":             "api-key=s%3Dcret,x-team=payments",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":      "api-key=other",
		"OTEL_EXPORTER_OTLP_COMPRESSION":         "gzip",
		"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION":    "none",
		"OTEL_EXPORTER_OTLP_TIMEOUT":             "2500",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":    "http/json",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":      "700",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT":       "http://logs:4318/v1/logs",
		"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Exporters, ",") != "otlp,console" {
		t.Errorf("exporters %v", c.Exporters)
	}
	tr, lg, mt := c.OTLP[Traces], c.OTLP[Logs], c.OTLP[Metrics]
	if tr.Headers["api-key"] != "other" || len(tr.Headers) != 1 || lg.Headers["api-key"] != "s=cret" || lg.Headers["x-team"] != "payments" {
		t.Errorf("headers: traces %v, logs %v", tr.Headers, lg.Headers)
	}
	if !tr.Gzip || lg.Gzip || !mt.Gzip {
		t.Errorf("gzip: %v %v %v", tr.Gzip, lg.Gzip, mt.Gzip)
	}
	if tr.Timeout != 700*time.Millisecond || lg.Timeout != 2500*time.Millisecond || mt.Protocol != HTTPJSON {
		t.Errorf("timeouts %v %v, metrics protocol %s", tr.Timeout, lg.Timeout, mt.Protocol)
	}
}

// TestLoadConfigBadValues: each bad value is named with what is valid, and a header value,
// a secret, never appears in the message.
func TestLoadConfigBadValues(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{EnvExporters: "otlp,kafka"}, []string{EnvExporters, `unknown exporter "kafka"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL", `"http/protobuf", "http/json" or "grpc"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http:// or https://"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, []string{`"gzip" or "none"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "-3"}, []string{"positive number of milliseconds"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=topsecret,novalue"}, []string{"OTEL_EXPORTER_OTLP_HEADERS", "entry 2 is not key=value"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "reading the CA certificate"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, []string{"must be set together"}},
	}
	for _, tt := range tests {
		_, err := LoadConfig(lookup(tt.env))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error lacks %q: %v", tt.env, w, err)
			}
		}
		if lines := strings.Split(err.Error(), "\n"); len(slices.Compact(slices.Clone(lines))) != len(lines) || len(lines) != 1 {
			t.Errorf("%v: want the problem reported once, got %d lines: %v", tt.env, len(lines), err)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("a header value leaked into the error: %v", err)
		}
	}
}

func TestFileAndConsole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	var console bytes.Buffer
	exps, err := New(Config{Exporters: []string{NameFile, NameConsole}, FilePath: path}, &console)
	if err != nil || len(exps) != 2 {
		t.Fatalf("%d exporters, %v", len(exps), err)
	}
	q := NewQueue(exps, 1<<20, nil)
	reqs := sample()
	q.Add(reqs[:]...)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines in the file, want 3", len(lines))
	}
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(lines[1]))
	if err != nil || ld.LogRecordCount() != 5 {
		t.Errorf("the logs line reads back as %d records, %v", ld.LogRecordCount(), err)
	}
	out := console.String()
	for _, want := range []string{"lambda-otel traces: invoke (Error, 1000.0 ms)", "lambda-otel logs: 5 records -=5", "faas.invocations=21"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	counts := q.Counts()
	if len(counts) != 6 {
		t.Errorf("counts %+v, want exported for 3 signals at 2 exporters", counts)
	}
}

// TestQueueBound: over its byte bound the queue drops its oldest requests and counts them.
func TestQueueBound(t *testing.T) {
	var console bytes.Buffer
	reqs := sample()
	size := reqs[Logs].Size()
	q := NewQueue([]Exporter{NewConsole(&console)}, 2*size, nil)
	q.Add(reqs[Logs], reqs[Logs], reqs[Logs])
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, c := range q.Counts() {
		got[c.Outcome] = c.Items
	}
	if got[OutcomeQueueFull] != 5 || got[OutcomeExported] != 10 {
		t.Errorf("counts %v; want 5 dropped as queue_full and 10 exported", got)
	}
}

// Drops are logged once per exporter, signal and reason for each operation, with the
// items summed, however many requests they came in.
func TestQueueLogsDropsOnce(t *testing.T) {
	var log bytes.Buffer
	reqs := sample()
	q := NewQueue([]Exporter{NewConsole(io.Discard)}, 1<<20, slog.New(slog.NewJSONHandler(&log, nil)))
	q.Add(reqs[Logs], reqs[Logs], reqs[Logs], reqs[Traces])
	q.DropPending(OutcomeShutdown)
	var lines []map[string]any
	for line := range strings.Lines(log.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	want := []struct {
		signal string
		items  int
	}{{"logs", 3 * reqs[Logs].Items()}, {"traces", reqs[Traces].Items()}}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want one per signal:\n%s", len(lines), log.String())
	}
	for i, w := range want {
		if lines[i]["signal"] != w.signal || lines[i]["items"] != float64(w.items) || lines[i]["reason"] != OutcomeShutdown {
			t.Errorf("line %d = %v, want %d %s items dropped at shutdown", i, lines[i], w.items, w.signal)
		}
	}
}
