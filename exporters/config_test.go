package exporters

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
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

// TestLoadConfigBadValues: each bad value is named with what is valid, and a header value
// or an endpoint's credentials, secrets, never appear in the message.
func TestLoadConfigBadValues(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, content []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	notPEM := file("not.pem", []byte("topsecret is no certificate"))
	huge := file("huge.pem", bytes.Repeat([]byte("A"), maxPEMBytes+1))
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{EnvExporters: "otlp,kafka"}, []string{EnvExporters, `unknown exporter "kafka"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL", `"http/protobuf", "http/json" or "grpc"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http:// or https://"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://user:topsecret@x/"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT", `"ftp://[redacted]@x/"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:topsecret@exa mple.com"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT", `"https://[redacted]@exa mple.com"`, "invalid character"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://topsecret@%zz"}, []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", `"https://[redacted]@%zz"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, []string{`"gzip" or "none"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "-3"}, []string{"positive number of milliseconds"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "maybe"}, []string{"OTEL_EXPORTER_OTLP_INSECURE", `"true" or "false"`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=topsecret,novalue"}, []string{"OTEL_EXPORTER_OTLP_HEADERS", "entry 2 is not key=value", "key=value pairs"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x api key=topsecret"}, []string{"OTEL_EXPORTER_OTLP_HEADERS", "entry 1 is not an HTTP header name"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=top%0D%0Asecret"}, []string{"OTEL_EXPORTER_OTLP_HEADERS", `"api-key" has a control character`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_LOGS_HEADERS": "api-key=topsecret%zz"}, []string{"OTEL_EXPORTER_OTLP_LOGS_HEADERS", `"api-key" is not percent-encoded`}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, []string{`OTEL_EXPORTER_OTLP_CERTIFICATE="/nonexistent/ca.pem"`, "no such file", "want a PEM file of CA certificates"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": dir}, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "not a regular file"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/dev/zero"}, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "not a regular file"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": huge}, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "more than 1048576"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": notPEM}, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "holds no PEM certificate"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, []string{"must be set together", "both or neither"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM},
			[]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY", "loading the client certificate", "no client certificate is used"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/dev/zero", "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM},
			[]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "reading the certificate: it is not a regular file"}},
	}
	for _, tt := range tests {
		c, err := LoadConfig(lookup(tt.env))
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
			t.Errorf("a secret leaked into the error: %v", err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%v: the config after a bad value does not validate: %v", tt.env, err)
		}
	}
}

// TestEndpointCredentials: the user:password@ of an endpoint leaves the URL, which error
// messages quote, for an Authorization header, as net/http would send it; an explicit
// Authorization header wins, as it does in net/http.
func TestEndpointCredentials(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:p@ss word"))
	tests := []struct {
		name     string
		env      map[string]string
		wantURL  string
		wantAuth string
	}{
		{"user and password", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:p%40ss%20word@otlp.example.com:4318"},
			"https://otlp.example.com:4318/v1/logs", basic},
		{"a user alone", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://apikey@otlp.example.com"},
			"https://otlp.example.com/v1/logs", "Basic " + base64.StdEncoding.EncodeToString([]byte("apikey:"))},
		{"gRPC without a scheme", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "user:p%40ss%20word@collector:4317"},
			"https://collector:4317", basic},
		{"an Authorization header wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:pw@otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20tok"},
			"https://otlp.example.com/v1/logs", "Bearer tok"},
		{"none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com"}, "https://otlp.example.com/v1/logs", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(lookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			lg := c.OTLP[Logs]
			auth := ""
			for k, v := range lg.Headers {
				if strings.EqualFold(k, "Authorization") {
					auth = v
				}
			}
			if lg.URL != tt.wantURL || auth != tt.wantAuth || len(lg.Headers) > 1 {
				t.Errorf("URL %q headers %q; want %q with Authorization %q", lg.URL, lg.Headers, tt.wantURL, tt.wantAuth)
			}
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	c, err := LoadConfig(lookup(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "https://user:hunter2@otlp.example.com",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "x-api-key=k%3D1,authorization=Bearer%20tok-123",
		"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-api-key=k%3D1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Secrets()
	basic := base64.StdEncoding.EncodeToString([]byte("user:hunter2"))
	want := []string{"Basic " + basic, basic, "Bearer tok-123", "user:hunter2", "tok-123", "hunter2", "k=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	if s := DefaultConfig().Secrets(); len(s) != 0 {
		t.Errorf("the default config has secrets %q", s)
	}
}

// TestValidate: what LoadConfig returns validates; settings it could never produce are
// reported by the variable that sets them, without quoting header values.
func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Exporters = []string{NameOTLP, "kafka", NameOTLP}
	c.FilePath = ""
	c.OTLP[Traces].Protocol = "thrift"
	c.OTLP[Logs].URL = "ftp://user:topsecret@x"
	c.OTLP[Metrics].Timeout = 0
	c.OTLP[Metrics].Headers = map[string]string{"x-key": "top\nsecret"}
	err := c.Validate()
	for _, want := range []string{`LAMBDA_OTEL_EXPORTERS has "kafka"`, `LAMBDA_OTEL_EXPORTERS has "otlp", unknown or repeated`, EnvExportFile,
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT gives "ftp://[redacted]@x"`,
		"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", `OTEL_EXPORTER_OTLP_METRICS_HEADERS has the header "x-key"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "topsecret") {
		t.Errorf("a secret leaked: %v", err)
	}
}

// TestTLSSharedAcrossSignals: signals with the same certificate settings share one
// *tls.Config, which NewOTLP takes as the sign that they may share connections.
func TestTLSSharedAcrossSignals(t *testing.T) {
	p := newPKI(t)
	c, err := LoadConfig(lookup(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OTLP[Traces].TLS == nil || c.OTLP[Traces].TLS != c.OTLP[Logs].TLS || c.OTLP[Logs].TLS != c.OTLP[Metrics].TLS {
		t.Errorf("the signals have TLS settings %p %p %p, want one", c.OTLP[Traces].TLS, c.OTLP[Logs].TLS, c.OTLP[Metrics].TLS)
	}
	c, err = LoadConfig(lookup(map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile, "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": newPKI(t).caFile}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OTLP[Traces].TLS != c.OTLP[Metrics].TLS || c.OTLP[Logs].TLS == c.OTLP[Traces].TLS {
		t.Errorf("traces and metrics must share their TLS settings, logs have their own")
	}
}

// TestNewNamesTheExportFile: a file exporter that cannot open its file is left out, with
// an error naming the variable that set the path.
func TestNewNamesTheExportFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "out.jsonl")
	exps, err := New(Config{Exporters: []string{NameFile, NameConsole}, FilePath: path}, io.Discard)
	if len(exps) != 1 || exps[0].Name() != NameConsole {
		t.Errorf("exporters %v, want the console alone", exps)
	}
	if err == nil || !strings.Contains(err.Error(), EnvExportFile+"=") || !strings.Contains(err.Error(), "left out") {
		t.Errorf("error %v, want one naming %s", err, EnvExportFile)
	}
	for _, e := range exps {
		_ = e.Close(context.Background())
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

// TestNewWithoutEndpoint: the requests of a signal whose endpoint was not valid are refused
// at once, counted as rejected, instead of retried until the budget runs out; the other
// signals are sent.
func TestNewWithoutEndpoint(t *testing.T) {
	c, err := LoadConfig(lookup(map[string]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "ftp://logs"}))
	if err == nil {
		t.Fatal("no configuration error")
	}
	exps, err := New(c, io.Discard)
	if err != nil || len(exps) != 1 || exps[0].Name() != NameOTLP {
		t.Fatalf("exporters %v, %v", exps, err)
	}
	defer exps[0].Close(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req := sample()[Logs]
	start := time.Now()
	res := exps[0].Export(ctx, req)
	if res.Rejected != req.Items() || res.Retryable || res.Err == nil || !strings.Contains(res.Err.Error(), "endpoint is not valid") {
		t.Errorf("result %+v, want every item rejected at once", res)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v", d)
	}
}

// TestExtensionFamily checks that any LAMBDA_OTEL_EXPORTER_OTLP_* variable makes the
// extension read that family alone, leaving OTEL_EXPORTER_OTLP_* to the function's SDK,
// and that its errors name the variable that was read.
func TestExtensionFamily(t *testing.T) {
	sdk := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-sdk=1",
	}
	c, err := LoadConfig(lookup(sdk))
	if err != nil || c.OTLP[Traces].URL != "http://localhost:4318/v1/traces" || Family(lookup(sdk)) != FamilyOTel {
		t.Fatalf("without the extension's family: %v %+v", err, c.OTLP[Traces])
	}
	ext := maps.Clone(sdk)
	ext["LAMBDA_OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] = "https://logs.example.com/in"
	ext["LAMBDA_OTEL_EXPORTER_OTLP_TIMEOUT"] = "250"
	c, err = LoadConfig(lookup(ext))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.OTLP[Traces]; got.URL != defaultHTTPEndpoint+"/v1/traces" || len(got.Headers) != 0 || got.Timeout != 250*time.Millisecond {
		t.Errorf("traces read the SDK's variables: %+v", got)
	}
	if got := c.OTLP[Logs].URL; got != "https://logs.example.com/in" {
		t.Errorf("logs URL = %q", got)
	}
	ext["LAMBDA_OTEL_EXPORTER_OTLP_COMPRESSION"] = "brotli"
	if _, err := LoadConfig(lookup(ext)); err == nil || !strings.Contains(err.Error(), "LAMBDA_OTEL_EXPORTER_OTLP_COMPRESSION") {
		t.Errorf("the error does not name the variable read: %v", err)
	}
}
