package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// secret is planted in the extension's configuration; it must never be printed.
const secret = "SECRET-6f1c"

// echoBackend is a verbose, or malicious, OTLP backend: it refuses every export with 401
// and quotes every header of the request in its answer, the API key included. It answers
// OTLP/HTTP on HTTP/1.1 and gRPC on unencrypted HTTP/2 alike.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("unauthorized; you sent")
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range r.Header {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, " %s=%s", k, strings.Join(r.Header[k], ","))
		}
		if u, p, ok := r.BasicAuth(); ok {
			fmt.Fprintf(&b, " (user %s, password %s)", u, p)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(b.String()))
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestSecretsNeverPrinted runs the real extension with a secret in its OTLP headers (or in
// its endpoint's user:password@), debug logging, and a backend that echoes the secret
// back in its refusal, and checks that nothing the process writes, on stdout or stderr,
// holds it: not the configuration errors of a badly written header variable, not the
// export errors quoting the backend's answer, not the debug summary at shutdown.
func TestSecretsNeverPrinted(t *testing.T) {
	backend := echoBackend(t)
	host := strings.TrimPrefix(backend.URL, "http://")
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + secret))
	tests := []struct {
		name string
		env  []string
		// wantLog is printed by the extension in this case, to show the secret was near.
		wantLog []string
	}{
		{"an API key the backend echoes", []string{"OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret + ",x-team=core", "LAMBDA_OTEL_EXPORTERS=otlp,console"},
			[]string{"401 Unauthorized", "unauthorized; you sent", "X-Team=core", "telemetry dropped"}},
		{"the same over http/json", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret},
			[]string{"401 Unauthorized"}},
		{"the same over gRPC", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret},
			[]string{"HTTP 401 Unauthorized"}},
		{"a bearer token for one signal", []string{"OTEL_EXPORTER_OTLP_LOGS_HEADERS=Authorization=Bearer%20" + secret},
			[]string{"refused logs"}},
		{"credentials in the endpoint", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://user:" + secret + "@" + host},
			[]string{"401 Unauthorized", "password [redacted]"}},
		{"a header entry without a value after the key", []string{"OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret + ",broken"},
			[]string{"entry 2 is not key=value"}},
		{"a bad percent-encoding", []string{"OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret + "%zz"},
			[]string{`\"x-api-key\" is not percent-encoded`}},
		{"a control character", []string{"OTEL_EXPORTER_OTLP_HEADERS=x-api-key=" + secret + "%0A"},
			[]string{"has a control character"}},
		{"a key without a separator", []string{"OTEL_EXPORTER_OTLP_HEADERS=x-api-key:" + secret},
			[]string{"entry 1 is not key=value"}},
		{"a bad endpoint with credentials", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=ftp://user:" + secret + "@" + host},
			[]string{"ftp://[redacted]@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runLifecycle(t, append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + backend.URL, "LAMBDA_OTEL_LOG_LEVEL=debug"}, tt.env...))
			for _, leak := range []string{secret, basic} {
				if strings.Contains(out, leak) {
					t.Errorf("the extension printed the secret %q:\n%s", leak, out)
				}
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(out, w) {
					t.Errorf("the output lacks %s:\n%s", w, out)
				}
			}
		})
	}
}

// runLifecycle runs the extension binary with env through register, subscribe, one
// delivered log line, one invocation and SHUTDOWN, and returns all it wrote to stdout
// and stderr.
func runLifecycle(t *testing.T, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	api := lambdatest.New(lambdatest.Options{})
	defer api.Close()

	var out testbin.Buffer
	cmd := exec.CommandContext(ctx, bin)
	// Later entries win: the test's own settings come after the defaults here.
	cmd.Env = append([]string{"AWS_LAMBDA_RUNTIME_API=" + api.Addr(), "LAMBDA_OTEL_LISTENER_PORT=0", "LAMBDA_OTEL_RECEIVER=none", "LAMBDA_OTEL_FLUSH=shutdown"}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	lambdatest.Recv(t, ctx, api.Registers, "register")
	sub := lambdatest.Recv(t, ctx, api.Subscribes, "subscribe")
	line, err := os.ReadFile(filepath.Join("..", "..", "telemetry", "testdata", "events", "function-text.json"))
	if err != nil {
		t.Fatal(err)
	}
	if status, err := lambdatest.Deliver(ctx, sub, append(append([]byte("["), line...), ']')); err != nil || status != http.StatusOK {
		t.Fatalf("deliver: %d %v", status, err)
	}
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	if err := api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1", "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	dl := strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)
	if err := api.SendRaw(ctx, http.StatusOK, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":`+dl+`}`)); err != nil {
		t.Fatal(err)
	}
	if err := lambdatest.Recv(t, ctx, exited, "the process to exit"); err != nil {
		t.Fatalf("exit: %v\n%s", err, out.String())
	}
	return out.String()
}
