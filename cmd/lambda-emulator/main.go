// Command lambda-emulator runs a Lambda function's runtime and its extensions on this
// machine, speaking the Runtime, Extensions, Telemetry and Logs APIs to them, with an
// invoke endpoint and an embedded OTLP sink. Run it with --help for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator"
	"github.com/lambda-otel/lambda-otel/emulator/sink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	cfg          emulator.Config
	env          listFlag
	listen       string
	invoke       listFlag
	invocations  int
	idle         time.Duration
	eventsOut    string
	sinkAddr     string
	noSink       bool
	otlpOut      string
	shutdownWait time.Duration
	invokeConfig string
	destURLs     listFlag
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("lambda-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `lambda-emulator runs a Lambda function and its extensions locally.

Usage:
  lambda-emulator --extensions-dir DIR --task-dir DIR [flags]

With --invoke it runs a cold start, --invocations invocations of that event and a shutdown,
prints a summary and exits (non-zero if the environment failed). Without, it serves the
invoke endpoint (POST http://LISTEN/2015-03-31/functions/function/invocations) until
SIGINT or SIGTERM, --invocations invocations, or --idle-shutdown.

Flags:
`)
		fs.PrintDefaults()
	}
	c := &o.cfg
	fs.StringVar(&c.ExtensionsDir, "extensions-dir", "", "directory of external extensions, one executable per file (Lambda's /opt/extensions)")
	fs.StringVar(&c.TaskDir, "task-dir", "", "the function's code directory, LAMBDA_TASK_ROOT (required)")
	fs.StringVar(&c.Bootstrap, "bootstrap", "", "the runtime executable (default: TASK-DIR/bootstrap, then bootstrap beside the extensions directory)")
	fs.StringVar(&c.FunctionName, "function-name", "function", "the function's name")
	fs.StringVar(&c.Handler, "handler", "bootstrap", "the function's handler, _HANDLER")
	fs.StringVar(&c.Region, "region", "us-east-1", "AWS_REGION")
	fs.IntVar(&c.MemoryMB, "memory-mb", 128, "memory size in MB (128-10240); an invocation using more fails with Runtime.OutOfMemory")
	fs.DurationVar(&c.Timeout, "timeout", 3*time.Second, "function timeout, extensions' work included (at most 15m)")
	fs.DurationVar(&c.InitTimeout, "init-timeout", 10*time.Second, "init phase limit")
	fs.Var(&o.env, "env", "a function environment variable K=V (repeatable); extensions see it too")
	fs.StringVar(&c.LogFormat, "log-format", "Text", "Text or JSON: JSON sends JSON log lines to subscribers as objects and echoes platform events as JSON")
	fs.StringVar(&c.Tracing, "tracing", "PassThrough", "PassThrough (trace when the caller sends X-Amzn-Trace-Id) or Active (trace every invocation)")
	fs.BoolVar(&c.Freeze, "freeze", false, "stop every process (SIGSTOP) between invocations, as Lambda freezes an idle environment")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9000", "address of the invoke endpoint")
	fs.Var(&o.invoke, "invoke", "run non-interactively with this event: JSON, or @FILE (repeatable: the invocations take the events in turn)")
	fs.IntVar(&o.invocations, "invocations", 0, "number of invocations before shutting down (with --invoke: default one per event)")
	fs.DurationVar(&o.idle, "idle-shutdown", 0, "shut down after this long without an invocation (0: never)")
	fs.StringVar(&o.eventsOut, "events-out", "", "write every generated Telemetry API event to FILE as NDJSON")
	// Not 4318: that is the port of an extension's local receiver (lambda-otel's among
	// them), where the function's SDK sends by default, as it would in Lambda.
	fs.StringVar(&o.sinkAddr, "otlp-sink", "127.0.0.1:0", "address of the embedded OTLP/HTTP sink (port 0: a free one), given to extensions as OTEL_EXPORTER_OTLP_ENDPOINT unless --env sets one")
	fs.BoolVar(&o.noSink, "no-otlp-sink", false, "run without the embedded OTLP sink")
	fs.StringVar(&o.otlpOut, "otlp-out", "", "write what the sink receives to FILE as OTLP JSON lines")
	fs.DurationVar(&o.shutdownWait, "shutdown-timeout", 2*time.Second, "time extensions get after SHUTDOWN before they are killed")
	fs.StringVar(&o.invokeConfig, "event-invoke-config", "", "load an event-invoke config (retries, maximum event age, destinations) from FILE: the JSON of aws lambda put-function-event-invoke-config --cli-input-json")
	fs.Float64Var(&c.AsyncTimeScale, "async-time-scale", 1, "run the clock of asynchronous invocations (retry delays, event ages) this many times real time: 0.001 makes a minute 60 ms")
	fs.StringVar(&c.DestinationsDir, "destinations-dir", "", "directory of the NDJSON files standing in for SQS, SNS and EventBridge destinations, one per ARN")
	fs.Var(&o.destURLs, "destination-url", "ARN=URL: post the records for the Lambda function destination ARN to URL (repeatable)")
	fs.StringVar(&c.DeadLetterTarget, "dead-letter-arn", "", "the function's dead-letter queue or topic (SQS or SNS ARN), written under --destinations-dir")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	}
	if o.invocations < 0 {
		return nil, fmt.Errorf("--invocations %d: must be 0 or more", o.invocations)
	}
	c.Env = o.env
	c.ShutdownTimeout = o.shutdownWait
	for _, kv := range o.destURLs {
		// An ARN has no "=" and a URL may: the first one separates them.
		a, u, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--destination-url %q: must be ARN=URL", kv)
		}
		if c.DestinationURLs == nil {
			c.DestinationURLs = map[string]string{}
		}
		c.DestinationURLs[a] = u
	}
	if o.invokeConfig != "" {
		b, err := os.ReadFile(o.invokeConfig)
		if err != nil {
			return nil, fmt.Errorf("reading --event-invoke-config: %w", err)
		}
		c.EventInvokeConfig = b
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lambda-emulator:", err)
		return 2
	}
	if err := serve(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "lambda-emulator:", err)
		return 1
	}
	return 0
}

// errFailed marks a run whose environment failed, after its summary was printed.
var errFailed = errors.New("the environment failed")

func serve(ctx context.Context, o *options, stdout, stderr io.Writer) (err error) {
	o.cfg.Log = stderr
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i]())
		}
	}()
	if o.eventsOut != "" {
		f, err := os.Create(o.eventsOut)
		if err != nil {
			return fmt.Errorf("opening --events-out: %w", err)
		}
		closers = append(closers, f.Close)
		o.cfg.EventsOut = f
	}
	var snk *sink.Sink
	if !o.noSink {
		snk, err = startSink(ctx, o, stderr, &closers)
		if err != nil {
			return err
		}
		if !setsEndpoint(o.cfg.Env) {
			o.cfg.ExtensionDefaults = append(o.cfg.ExtensionDefaults, "OTEL_EXPORTER_OTLP_ENDPOINT="+snk.Endpoint())
		}
	}
	e, err := emulator.New(o.cfg)
	if err != nil {
		return err
	}
	if len(o.invoke) > 0 {
		err = runBatch(ctx, e, o, stdout)
	} else {
		err = runServer(ctx, e, o, stdout, stderr)
	}
	if snk != nil {
		fmt.Fprintln(stdout)
		if werr := snk.WriteReport(stdout); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

func startSink(ctx context.Context, o *options, stderr io.Writer, closers *[]func() error) (*sink.Sink, error) {
	opts := sink.Options{OnReceive: func(signal string, items int) {
		if len(o.invoke) == 0 {
			fmt.Fprintf(stderr, "lambda-emulator: OTLP sink received %d %s\n", items, signal)
		}
	}}
	if o.otlpOut != "" {
		f, err := os.Create(o.otlpOut)
		if err != nil {
			return nil, fmt.Errorf("opening --otlp-out: %w", err)
		}
		*closers = append(*closers, f.Close)
		opts.JSONLines = f
	}
	snk, err := sink.Start(ctx, o.sinkAddr, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the OTLP sink on %s (choose another with --otlp-sink, or --no-otlp-sink): %w", o.sinkAddr, err)
	}
	*closers = append(*closers, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return snk.Close(cctx)
	})
	return snk, nil
}

// setsEndpoint reports whether the function's environment chooses an OTLP endpoint itself.
func setsEndpoint(env []string) bool {
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(k, "ENDPOINT") {
			return true
		}
	}
	return false
}

func payload(arg string) ([]byte, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading the --invoke event: %w", err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

// runBatch is the non-interactive mode: a cold start, the invocations, a shutdown, the summary.
func runBatch(ctx context.Context, e *emulator.Emulator, o *options, stdout io.Writer) error {
	var events [][]byte
	for _, arg := range o.invoke {
		event, err := payload(arg)
		if err != nil {
			return err
		}
		events = append(events, event)
	}
	n := o.invocations
	if n == 0 {
		n = len(events)
	}
	// A failed init is reported by the platform lines and retried by the first invocation.
	e.Init(ctx)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if _, err := e.Invoke(ctx, emulator.Request{Payload: events[i%len(events)]}); err != nil {
			break
		}
	}
	rep, err := shutdown(e)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := emulator.WriteSummary(stdout, e.Records(), rep, e.Failed()); err != nil {
		return err
	}
	if e.Failed() {
		return errFailed
	}
	return nil
}

func shutdown(e *emulator.Emulator) (emulator.ShutdownReport, error) {
	// The shutdown waits for the invocation in progress, which its timeout bounds.
	ctx, cancel := context.WithTimeout(context.Background(), e.Config().Timeout+e.Config().ShutdownTimeout+10*time.Second)
	defer cancel()
	return e.Shutdown(ctx)
}

// runServer serves the invoke endpoint until a signal, the invocation count or idleness
// ends it, then prints the summary.
func runServer(ctx context.Context, e *emulator.Emulator, o *options, stdout, stderr io.Writer) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		shutdown(e)
		return fmt.Errorf("listening on --listen %s: %w", o.listen, err)
	}
	stop := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(stop) }) }
	activity := make(chan struct{}, 1)
	front := e.InvokeHandler()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		front.ServeHTTP(w, r)
		select {
		case activity <- struct{}{}:
		default:
		}
		if o.invocations > 0 && e.Invocations() >= o.invocations {
			done()
		}
	})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "lambda-emulator: invoke with: curl -d '{}' http://%s%s\n", ln.Addr(), emulator.InvokePath)
	e.Init(ctx)
	var idle <-chan time.Time
	var timer *time.Timer
	if o.idle > 0 {
		timer = time.NewTimer(o.idle)
		defer timer.Stop()
		idle = timer.C
	}
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-stop:
			// The invocations counted include their asynchronous retries still to come;
			// a signal ends the wait.
			e.Drain(ctx)
			running = false
		case <-idle:
			// Asynchronous events still queued are work to come, not idleness.
			if e.QueuedEvents() > 0 {
				timer.Reset(o.idle)
				continue
			}
			fmt.Fprintf(stderr, "lambda-emulator: idle for %v, shutting down\n", o.idle)
			running = false
		case <-activity:
			if timer != nil {
				timer.Reset(o.idle)
			}
		case err := <-serveErr:
			shutdown(e)
			return fmt.Errorf("serving the invoke endpoint: %w", err)
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(cctx)
	<-serveErr
	rep, err := shutdown(e)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return emulator.WriteSummary(stdout, e.Records(), rep, e.Failed())
}
