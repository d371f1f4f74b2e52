package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// bin is the command built once for all tests, as Lambda finds it: a file named lambda-otel.
var bin string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		bin = filepath.Join(dir, "lambda-otel")
		// Built as the layer ships it: static, so start-up is measured as users get it.
		return testbin.Build(map[string]string{bin: "."}, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w")
	}))
}

// TestBinary runs the real extension binary through a whole lifecycle against the fake API:
// register, subscribe, telemetry, an invocation, shutdown and a clean exit.
func TestBinary(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantLog []string
	}{
		{"debug summary", []string{"LAMBDA_OTEL_LOG_LEVEL=debug"}, []string{`"msg":"shutdown"`, `"function":1`, `"extension":"lambda-otel"`}},
		{"bad configuration fails open", []string{"LAMBDA_OTEL_BUFFER_TIMEOUT_MS=5", "LAMBDA_OTEL_LOG_LEVEL=chatty"},
			[]string{"LAMBDA_OTEL_BUFFER_TIMEOUT_MS=\\\"5\\\" is not valid", "LAMBDA_OTEL_LOG_LEVEL=\\\"chatty\\\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			api := lambdatest.New(lambdatest.Options{})
			defer api.Close()

			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin)
			rcv := otlptest.Start(t)
			cmd.Env = append([]string{"AWS_LAMBDA_RUNTIME_API=" + api.Addr(), "LAMBDA_OTEL_LISTENER_PORT=0", "LAMBDA_OTEL_RECEIVER=none",
				"LAMBDA_OTEL_FLUSH=shutdown", "OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.HTTPEndpoint}, tt.env...)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			if reg := lambdatest.Recv(t, ctx, api.Registers, "register"); reg.Name != "lambda-otel" {
				t.Errorf("registered as %q", reg.Name)
			}
			sub := lambdatest.Recv(t, ctx, api.Subscribes, "subscribe")
			line, err := os.ReadFile(filepath.Join("..", "..", "telemetry", "testdata", "events", "function-text.json"))
			if err != nil {
				t.Fatal(err)
			}
			if status, err := lambdatest.Deliver(ctx, sub, append(append([]byte("["), line...), ']')); err != nil || status != 200 {
				t.Fatalf("deliver: %d %v", status, err)
			}
			lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
			if err := api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "r1", "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
			deadline := time.Now().Add(2 * time.Second)
			if err := api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":`+strconv.FormatInt(deadline.UnixMilli(), 10)+`}`)); err != nil {
				t.Fatal(err)
			}
			if err := lambdatest.Recv(t, ctx, exited, "the process to exit"); err != nil {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
			if now := time.Now(); now.After(deadline) {
				t.Errorf("exited %v after the shutdown deadline", now.Sub(deadline))
			}
			if _, logs, _ := rcv.Counts(); logs != 1 {
				t.Errorf("the backend received %d log records, want the 1 delivered", logs)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %s:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestBinaryWithoutRuntimeAPI(t *testing.T) {
	cmd := exec.Command(bin)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Errorf("exit code %d (%v), want 1", code, err)
	}
	if !strings.Contains(string(out), "AWS_LAMBDA_RUNTIME_API is not set") {
		t.Errorf("output: %s", out)
	}
}

// BenchmarkStartToFirstNext measures the extension's share of a cold start: from starting
// the process to its first event/next, through register, listener start and subscribe,
// with the local receiver as configured by default (http), off, and with gRPC too.
func BenchmarkStartToFirstNext(b *testing.B) {
	for _, receiver := range []string{"http", "none", "http,grpc"} {
		b.Run("receiver="+receiver, func(b *testing.B) { benchStartToFirstNext(b, receiver) })
	}
}

func benchStartToFirstNext(b *testing.B, receiver string) {
	api := lambdatest.New(lambdatest.Options{})
	defer api.Close()
	rcv := otlptest.Start(b)
	var total time.Duration
	n := 0
	for b.Loop() {
		n++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// Free ports stand in for 4318 and 4317, which this machine may have in use.
		setting := strings.NewReplacer("http", "http:"+strconv.Itoa(testbin.FreePort(b)), "grpc", "grpc:"+strconv.Itoa(testbin.FreePort(b))).Replace(receiver)
		cmd := extensionCmd(ctx, api, rcv, "LAMBDA_OTEL_RECEIVER="+setting)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-api.NextCalls:
		case <-ctx.Done():
			b.Fatal("no event/next")
		}
		total += time.Since(start)
		<-api.Registers
		<-api.Subscribes
		if err := api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN"}`)); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "ms-to-next")
	b.ReportMetric(0, "ns/op")
}

// extensionCmd is the extension binary set up against api, exporting to rcv.
func extensionCmd(ctx context.Context, api *lambdatest.Server, rcv *otlptest.Receiver, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append([]string{"AWS_LAMBDA_RUNTIME_API=" + api.Addr(), "LAMBDA_OTEL_LISTENER_PORT=0", "LAMBDA_OTEL_RECEIVER=none", "OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.HTTPEndpoint}, env...)
	return cmd
}

// BenchmarkShutdownToExit measures the time from SHUTDOWN to the process's exit with
// 10,000 function log lines buffered: the last flush, into a local collector receiver.
func BenchmarkShutdownToExit(b *testing.B) {
	api := lambdatest.New(lambdatest.Options{})
	defer api.Close()
	rcv := otlptest.Start(b)
	var batch strings.Builder
	batch.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"time":"2024-05-01T10:00:00.%03dZ","type":"function","record":"2024-05-01T10:00:00.000Z\t6d68ca91-49c9-448d-89b8-7ca3e6dc66aa\tINFO\tline %d of the flood"}`, i, i)
	}
	batch.WriteByte(']')
	var total time.Duration
	n := 0
	for b.Loop() {
		n++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := extensionCmd(ctx, api, rcv, "LAMBDA_OTEL_FLUSH=shutdown")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		<-api.Registers
		sub := <-api.Subscribes
		<-api.NextCalls
		for range 10 {
			if status, err := lambdatest.Deliver(ctx, sub, []byte(batch.String())); err != nil || status != 200 {
				b.Fatalf("deliver: %d %v", status, err)
			}
		}
		dl := strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)
		start := time.Now()
		if err := api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":`+dl+`}`)); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		cancel()
	}
	if _, logs, _ := rcv.Counts(); logs < 10000*n {
		b.Errorf("the receiver got %d log records, want %d", logs, 10000*n)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "ms-shutdown-to-exit")
	b.ReportMetric(0, "ns/op")
}
