package extension

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readVars returns every variable LoadConfig reads, the extension's and the exporters',
// found by asking it: once with nothing set, and once with everything set, since a
// per-signal OTEL_EXPORTER_OTLP_<SIGNAL>_X hides the general OTEL_EXPORTER_OTLP_X.
func readVars(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, value := range []string{"", "x"} {
		_, _ = LoadConfig(func(name string) (string, bool) {
			seen[name] = true
			return value, value != ""
		})
	}
	if len(seen) < 40 {
		t.Fatalf("LoadConfig reads only %d variables: %v", len(seen), slices.Sorted(maps.Keys(seen)))
	}
	return slices.Sorted(maps.Keys(seen))
}

// fuzzEnv encodes an environment as FuzzLoadConfig reads it: NAME=value entries separated
// by NUL, which no environment variable can hold.
func fuzzEnv(kv map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		b.WriteString(k + "=" + kv[k] + "\x00")
	}
	return b.String()
}

// parseFuzzEnv decodes fuzzEnv's encoding; the last of a repeated name wins.
func parseFuzzEnv(s string) map[string]string {
	env := map[string]string{}
	for entry := range strings.SplitSeq(s, "\x00") {
		if k, v, ok := strings.Cut(entry, "="); ok {
			env[k] = v
		}
	}
	return env
}

// canary is planted in every header variable the fuzzer sets, as a well-formed first
// entry: whatever the rest of the value holds, it must never appear in an error.
const canary = "x-canary=SECRET-CANARY-6f1c"

// headerError is the only form an error about a header variable may take: its parts name
// an entry's position or quote its key, never a value.
var headerError = regexp.MustCompile(`^((?:LAMBDA_)?OTEL_EXPORTER_OTLP_(?:[A-Z]+_)?HEADERS) is not valid: ` +
	`(?:entry \d+ is not key=value|the key of entry \d+ is not an HTTP header name|the value of (".*") (?:is not percent-encoded properly|has a control character, which HTTP does not allow)); ` +
	`want comma-separated key=value pairs with percent-encoded values; sending no headers$`)

// FuzzLoadConfig gives every variable the extension reads a fuzzed value. Whatever they
// hold, LoadConfig must not panic; the configuration it returns must be valid (every
// setting within its documented range, every URL and header sendable); every problem it
// reports must name a variable that was set; and no header value may appear in an error.
// The seeds are the README's examples, each variable's documented edges and bad values,
// and the inputs of past failures (testdata/fuzz/FuzzLoadConfig).
func FuzzLoadConfig(f *testing.F) {
	vars := readVars(f)
	seeds := []map[string]string{
		{},
		{EnvTelemetryTypes: "platform,function", EnvBufferTimeoutMs: "100", EnvBufferMaxItems: "1000", EnvBufferMaxBytes: "1048576",
			EnvListenerPort: "0", EnvQueueMaxBytes: "8388608", EnvLogLevel: "debug", EnvPhaseSpans: "children", EnvFlush: "periodic,5000",
			EnvFlushTimeoutMs: "250", EnvPlatformLogs: "start,report,logsDropped", EnvFaaSTrigger: "http", EnvMetricsTemporality: "delta",
			EnvServiceName: "checkout", EnvResourceAttributes: "team=payments%20core,env=prod", "LAMBDA_OTEL_EXPORTERS": "otlp,file,console",
			"LAMBDA_OTEL_EXPORT_FILE": "/tmp/out.jsonl", "AWS_LAMBDA_FUNCTION_NAME": "hello", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_REGION": "eu-west-1"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%2C123,x-team=core",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://user:pass@traces.example.com:4317"},
		{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9000/ingest", "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "authorization=Bearer%20tok",
			"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"},
		// Bad values, one of each kind.
		{EnvBufferTimeoutMs: "5", EnvBufferMaxItems: "20000", EnvBufferMaxBytes: "1024", EnvListenerPort: "9001", EnvQueueMaxBytes: "-1",
			EnvFlushTimeoutMs: "0", EnvLogLevel: "info+2", EnvTelemetryTypes: "platform,logs", EnvPhaseSpans: "nested", EnvPlatformLogs: "report,bogus",
			EnvFaaSTrigger: "sqs", EnvMetricsTemporality: "sometimes", EnvResourceAttributes: "team", EnvFlush: "periodic"},
		{EnvListenerPort: "70000", EnvBufferTimeoutMs: "fast", EnvFlush: "periodic,0", EnvQueueMaxBytes: "99999999999999999999"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift", "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://user:secret@x", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "-3", "OTEL_EXPORTER_OTLP_INSECURE": "maybe", "LAMBDA_OTEL_EXPORTERS": "otlp,kafka"},
		{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret,novalue", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x api=secret",
			"OTEL_EXPORTER_OTLP_LOGS_HEADERS": "k=se%0Acret", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "k=secret%zz"},
		// Files that are no certificates: a device that never ends, a directory, nothing.
		{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/dev/zero", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/nonexistent"},
		{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "/dev/stdin", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://h:4318/\x00", "OTEL_EXPORTER_OTLP_HEADERS": "\xff=\xfe"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://[::1", "OTEL_EXPORTER_OTLP_HEADERS": " , ,=,", EnvFlush: " Periodic , 10 "},
	}
	for _, kv := range seeds {
		f.Add(fuzzEnv(kv))
	}
	// Every variable on its own, with a value it does not accept.
	for _, v := range vars {
		f.Add(fuzzEnv(map[string]string{v: "\x7f bad value"}))
	}
	f.Fuzz(func(t *testing.T, input string) {
		env := parseFuzzEnv(input)
		set := map[string]bool{}
		for k, v := range env {
			if strings.TrimSpace(v) == "" {
				continue
			}
			set[k] = true
			if strings.HasSuffix(k, "_HEADERS") {
				env[k] = canary + "," + v
			}
		}
		c, err := LoadConfig(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
		if verr := c.Validate(); verr != nil {
			t.Fatalf("the config is not valid: %v\nLoadConfig's error: %v", verr, err)
		}
		if err == nil {
			return
		}
		if strings.Contains(err.Error(), "SECRET-CANARY") {
			t.Fatalf("a header value leaked into the error: %v", err)
		}
		for _, leaf := range leaves(err) {
			msg := leaf.Error()
			named := ""
			for k := range set {
				if strings.Contains(msg, k) && len(k) > len(named) {
					named = k
				}
			}
			if named == "" {
				t.Fatalf("an error names no variable that was set: %q (set: %v)", msg, slices.Sorted(maps.Keys(set)))
			}
			if strings.HasSuffix(named, "_HEADERS") {
				checkHeaderError(t, msg, env)
			}
		}
	})
}

// checkHeaderError holds an error about a header variable to headerError's form, with any
// quoted key one of the variable's keys.
func checkHeaderError(t *testing.T, msg string, env map[string]string) {
	t.Helper()
	m := headerError.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("an error about headers has an unexpected form, which may quote a value: %q", msg)
	}
	if m[2] == "" {
		return
	}
	for pair := range strings.SplitSeq(env[m[1]], ",") {
		k, _, _ := strings.Cut(pair, "=")
		if strconv.Quote(strings.TrimSpace(k)) == m[2] {
			return
		}
	}
	t.Fatalf("an error about %s quotes %s, which is not one of its keys: %q", m[1], m[2], msg)
}

// leaves flattens the errors errors.Join combined, at any depth.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestLeaves checks the fuzz target's own helper on a nested join.
func TestLeaves(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := leaves(errors.Join(a, errors.Join(b, nil, c)))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Errorf("leaves = %v", got)
	}
}
