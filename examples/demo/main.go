// Command demo runs the local demo behind `make run` and `make run-otlp`: the example
// function hello with the lambda-otel extension in lambda-emulator, for a cold start, four
// invocations (one failing, the others calling a downstream HTTP service on loopback) and
// a shutdown.
//
// By default the extension exports to the emulator's embedded OTLP sink, which prints the
// trace tree, the logs and the metrics it received and leaves them in OUT/otlp.jsonl. With
// -external, it exports instead to the endpoint set by the OTEL_EXPORTER_OTLP_* variables
// of the demo's own environment, which are handed to the function and the extension as
// they are.
//
// The programs are taken from -bin, where `make run` builds them: lambda-emulator,
// lambda-otel and hello.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configure one demo run.
type Options struct {
	// Bin holds the built programs.
	Bin string
	// Out receives the extensions directory, the function's task directory and the
	// emulator's output files; it is emptied first.
	Out string
	// External exports to the OTEL_EXPORTER_OTLP_* endpoint found in Env instead of the
	// embedded sink.
	External bool
	// Env is the environment whose OTEL_* variables are passed on, as os.Environ returns it.
	Env []string
}

// downstreamLatency is the downstream's simulated work, long enough to show in the
// invocation's duration.
const downstreamLatency = 15 * time.Millisecond

// runTimeout bounds the whole demo; a normal run takes about a second.
const runTimeout = 2 * time.Minute

func main() {
	var o Options
	flag.StringVar(&o.Bin, "bin", "bin", "directory of the built lambda-emulator, lambda-otel and hello")
	flag.StringVar(&o.Out, "out", filepath.Join("bin", "demo"), "output directory (emptied first)")
	flag.BoolVar(&o.External, "external", false, "export to the endpoint in OTEL_EXPORTER_OTLP_ENDPOINT instead of the embedded sink")
	flag.Parse()
	o.Env = os.Environ()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run performs the demo, writing the emulator's output and the downstream's request log to
// stdout and stderr.
func run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	otel := otelVariables(o.Env)
	if o.External && !hasEndpoint(otel) {
		return errors.New("exporting to an external backend needs OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal endpoint), " +
			"e.g. make run-otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318")
	}
	extensions, task, err := layout(o.Bin, o.Out)
	if err != nil {
		return err
	}
	down, err := startDownstream(stderr)
	if err != nil {
		return err
	}
	defer down.Close()

	args := []string{
		"--extensions-dir", extensions, "--task-dir", task, "--function-name", "hello",
		"--tracing", "Active", "--events-out", filepath.Join(o.Out, "events.jsonl"),
	}
	if !slices.ContainsFunc(otel, func(kv string) bool { return strings.HasPrefix(kv, "LAMBDA_OTEL_LISTENER_PORT=") }) {
		// On Lambda the extension has the sandbox's ports to itself; here another
		// emulator's extension, or any program, may hold its default 4243.
		args = append(args, "--env", "LAMBDA_OTEL_LISTENER_PORT=0")
	}
	if !slices.ContainsFunc(otel, func(kv string) bool { return strings.HasPrefix(kv, "LAMBDA_OTEL_RECEIVER=") }) {
		// Nor may its local OTLP receiver count on 4318, where a collector may listen.
		// The demo's functions send no telemetry of their own, so it is off.
		args = append(args, "--env", "LAMBDA_OTEL_RECEIVER=none")
	}
	for _, ev := range events(down.URL) {
		args = append(args, "--invoke", ev)
	}
	if o.External {
		args = append(args, "--no-otlp-sink")
		for _, kv := range otel {
			args = append(args, "--env", kv)
		}
	} else {
		// Port 0: a collector already listening on 4318 must not break the demo.
		args = append(args, "--otlp-sink", "127.0.0.1:0", "--otlp-out", filepath.Join(o.Out, "otlp.jsonl"))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(o.Bin, "lambda-emulator"), args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running lambda-emulator: %w", err)
	}
	return nil
}

// events are the invocations' payloads: the third fails with PaymentDeclinedError, the
// others each look up one item downstream.
func events(downstream string) []string {
	ok := func(message, item string) string {
		ev, _ := json.Marshal(map[string]string{"action": "ok", "message": message, "url": downstream + "/inventory/" + item})
		return string(ev)
	}
	return []string{
		ok("first", "apples"),
		ok("second", "pears"),
		`{"action":"error","message":"card expired"}`,
		ok("last", "figs"),
	}
}

// layout prepares OUT as Lambda would see it: the extension in an extensions directory
// (Lambda's /opt/extensions) and the function as its task directory's bootstrap. Links
// keep the built programs where make put them.
func layout(bin, out string) (extensions, task string, err error) {
	if err := os.RemoveAll(out); err != nil {
		return "", "", fmt.Errorf("emptying %s: %w", out, err)
	}
	extensions, task = filepath.Join(out, "extensions"), filepath.Join(out, "task")
	// In a fixed order, so that a missing program is named the same way on every run.
	links := []struct{ link, target string }{
		{filepath.Join(extensions, "lambda-otel"), filepath.Join(bin, "lambda-otel")},
		{filepath.Join(task, "bootstrap"), filepath.Join(bin, "hello")},
	}
	for _, l := range links {
		link, target := l.link, l.target
		abs, err := filepath.Abs(target)
		if err != nil {
			return "", "", fmt.Errorf("locating %s: %w", target, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", "", fmt.Errorf("%w (build it with make build and go build -o %s ./examples/hello)", err, bin)
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return "", "", fmt.Errorf("creating %s: %w", filepath.Dir(link), err)
		}
		if err := os.Symlink(abs, link); err != nil {
			return "", "", fmt.Errorf("linking %s: %w", link, err)
		}
	}
	return extensions, task, nil
}

// otelVariables are the OTEL_* and LAMBDA_OTEL_* settings in env, for the extension.
func otelVariables(env []string) []string {
	var vars []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "LAMBDA_OTEL_") {
			vars = append(vars, kv)
		}
	}
	return vars
}

// hasEndpoint reports whether vars name a backend for at least one signal.
func hasEndpoint(vars []string) bool {
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(k, "ENDPOINT") && v != "" {
			return true
		}
	}
	return false
}

// downstream is the service the function calls: an inventory lookup on loopback that logs
// each request with the X-Ray header it carried, so the caller's trace id can be matched.
type downstream struct {
	URL string
	srv *http.Server
	end chan error
}

func startDownstream(log io.Writer) (*downstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the downstream service: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /inventory/{item}", func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(downstreamLatency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		item := r.PathValue("item")
		fmt.Fprintf(log, "downstream: GET %s X-Amzn-Trace-Id: %s\n", r.URL.Path, r.Header.Get("X-Amzn-Trace-Id"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"item": item, "inStock": 10 * len(item)})
	})
	d := &downstream{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		end: make(chan error, 1),
	}
	go func() { d.end <- d.srv.Serve(ln) }()
	return d, nil
}

// Close stops the service and waits for it.
func (d *downstream) Close() {
	_ = d.srv.Close()
	<-d.end
}
