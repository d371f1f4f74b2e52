// Command hello is the example function of the local demo and the emulator's end-to-end tests.
// Its event picks one behaviour (normal logging, a handled error, a timeout, a crash, memory
// exhaustion or a log flood) so that every platform outcome the extension has to report can
// be produced on demand. It is deployed as a custom runtime's bootstrap.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Defaults for the event fields that size an action.
const (
	defaultFloodLines = 10000
	defaultOOMMiB     = 256
)

// downstreamTimeout bounds the loopback call so a dead downstream shows up as a handled
// error rather than as a function timeout.
const downstreamTimeout = 2 * time.Second

// traceKey is the context key under which aws-lambda-go stores the invocation's
// X-Amzn-Trace-Id header value.
const traceKey = "x-amzn-trace-id"

// actions lists the valid values of Event.Action, for the unknown-action error.
var actions = []string{"ok", "error", "sleep", "hang", "crash", "oom", "flood", "lines"}

// Event selects what one invocation does. Fields an action does not use are ignored.
type Event struct {
	Action string `json:"action"`
	// Lines sizes flood, and is the number of text lines of lines; JSONLines is the number
	// of JSON lines of lines.
	Lines     int    `json:"lines"`
	JSONLines int    `json:"jsonLines"`
	SleepMs   int    `json:"sleepMs"`
	MB        int    `json:"mb"`
	URL       string `json:"url"`
	Message   string `json:"message"`
}

// Response is the result of every action that completes normally.
type Response struct {
	OK        bool   `json:"ok"`
	RequestID string `json:"requestId"`
	Action    string `json:"action"`
	// Status is the downstream HTTP status, present only when the event named a URL.
	Status int `json:"status,omitempty"`
}

// PaymentDeclinedError is the failure of the "error" action. It stands in for the business
// error a real handler returns; being a named type, it reaches the Runtime API with the
// errorType "PaymentDeclinedError" instead of an anonymous one.
type PaymentDeclinedError struct {
	RequestID string
	Reason    string
}

// Error names the request so the message alone identifies the failed invocation.
func (e *PaymentDeclinedError) Error() string {
	return fmt.Sprintf("payment declined for request %s: %s", e.RequestID, e.Reason)
}

// UnknownActionError is returned for an event whose action is not one of the valid ones, so
// a typo in a test or demo event fails loudly and says what would have worked.
type UnknownActionError struct {
	Action string
}

// Error lists the valid actions so the caller can correct the event without reading code.
func (e *UnknownActionError) Error() string {
	return fmt.Sprintf("unknown action %q; valid actions are %s (empty means ok)",
		e.Action, strings.Join(actions, ", "))
}

// DownstreamError is returned when the downstream GET fails, keeping the cause inspectable.
type DownstreamError struct {
	URL string
	Err error
}

// Error says which downstream failed; the cause is in the wrapped error.
func (e *DownstreamError) Error() string {
	return fmt.Sprintf("calling downstream %s: %v", e.URL, e.Err)
}

// Unwrap exposes the transport error, e.g. a context deadline.
func (e *DownstreamError) Unwrap() error { return e.Err }

// stdout serialises all writes to standard output. The platform cuts function output into
// log records at newlines, so a text line and a JSON line must never share a line.
type stdout struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p in one call while holding the lock; slog's handler writes each record
// this way.
func (s *stdout) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// exclusive lets fn write many lines through its own buffer, whose flushes split lines
// anywhere, without any other line landing in between.
func (s *stdout) exclusive(fn func(w io.Writer) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.w)
}

// function holds what the handler shares across invocations.
type function struct {
	out  *stdout
	log  *slog.Logger
	http *http.Client
}

func newFunction(w io.Writer) *function {
	out := &stdout{w: w}
	return &function{
		out:  out,
		log:  slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		http: &http.Client{Timeout: downstreamTimeout},
	}
}

// announce writes the init-phase lines, one text and one JSON, so the demo shows function
// output attributed to the init phase.
func (f *function) announce() {
	fmt.Fprintln(f.out, "[INFO] hello: init")
	f.log.Info("hello: init",
		"functionName", lambdacontext.FunctionName,
		"functionVersion", lambdacontext.FunctionVersion,
		"memoryMB", lambdacontext.MemoryLimitInMB,
		"initializationType", os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE"))
}

// textf writes one line in the tab-separated "[LEVEL] time requestId message" layout the
// managed runtimes use, so the extension's text-line parsing sees the usual shape.
func (f *function) textf(level, requestID, format string, args ...any) {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	fmt.Fprintf(f.out, "[%s]\t%s\t%s\t%s\n", level, ts, requestID, fmt.Sprintf(format, args...))
}

// handle runs the action the event names. Errors are returned unwrapped because
// aws-lambda-go reports the dynamic type's name as the errorType.
func (f *function) handle(ctx context.Context, ev Event) (Response, error) {
	var requestID string
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	action := ev.Action
	if action == "" {
		action = "ok"
	}
	res := Response{OK: true, RequestID: requestID, Action: action}
	log := f.log.With("requestId", requestID)

	switch action {
	case "ok":
		status, err := f.greet(ctx, log, requestID, ev)
		if err != nil {
			return Response{}, err
		}
		res.Status = status
	case "error":
		reason := ev.Message
		if reason == "" {
			reason = "card expired"
		}
		f.textf("ERROR", requestID, "payment declined: %s", reason)
		return Response{}, &PaymentDeclinedError{RequestID: requestID, Reason: reason}
	case "sleep":
		f.textf("INFO", requestID, "sleeping %d ms", ev.SleepMs)
		if err := sleep(ctx, time.Duration(ev.SleepMs)*time.Millisecond); err != nil {
			f.textf("WARN", requestID, "sleep interrupted: %v", err)
			return Response{}, err
		}
	case "hang":
		// A call that does not watch its context: only the platform's timeout ends it.
		f.textf("INFO", requestID, "hanging, deadline ignored")
		time.Sleep(time.Hour)
	case "crash":
		f.textf("ERROR", requestID, "crashing")
		os.Exit(2)
	case "oom":
		return Response{}, f.exhaustMemory(ctx, requestID, ev.MB)
	case "flood":
		if err := f.flood(ev.Lines); err != nil {
			return Response{}, err
		}
	case "lines":
		f.lines(log, requestID, ev.Lines, ev.JSONLines)
		if err := sleep(ctx, time.Duration(ev.SleepMs)*time.Millisecond); err != nil {
			return Response{}, err
		}
	default:
		return Response{}, &UnknownActionError{Action: ev.Action}
	}
	return res, nil
}

// greet is the ordinary invocation: log lines at several levels in both formats, and the
// downstream call when the event names one. It returns the downstream status, or 0.
func (f *function) greet(ctx context.Context, log *slog.Logger, requestID string, ev Event) (int, error) {
	who := ev.Message
	if who == "" {
		who = "world"
	}
	f.textf("DEBUG", requestID, "event: action=%q lines=%d sleepMs=%d mb=%d url=%q",
		ev.Action, ev.Lines, ev.SleepMs, ev.MB, ev.URL)
	log.Debug("event decoded", "action", ev.Action)
	f.textf("INFO", requestID, "hello, %s", who)
	var remaining time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		remaining = time.Until(deadline)
	}
	log.Info("greeted", "who", who, "remainingMs", remaining.Milliseconds())
	f.textf("WARN", requestID, "sample warning: every ok invocation logs one")
	if ev.URL == "" {
		return 0, nil
	}
	status, took, err := f.get(ctx, ev.URL)
	if err != nil {
		f.textf("ERROR", requestID, "downstream %s failed: %v", ev.URL, err)
		return 0, &DownstreamError{URL: ev.URL, Err: err}
	}
	f.textf("INFO", requestID, "downstream %s answered %d", ev.URL, status)
	log.Info("downstream call", "url", ev.URL, "status", status, "durationMs", took.Milliseconds())
	return status, nil
}

// get performs the downstream GET and drains the body so the connection can be reused.
func (f *function) get(ctx context.Context, url string) (int, time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("building request: %w", err)
	}
	// Forwarding the invocation's X-Ray header lets the downstream join the same trace.
	if trace, ok := ctx.Value(traceKey).(string); ok && trace != "" {
		req.Header.Set("X-Amzn-Trace-Id", trace)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, 0, fmt.Errorf("reading answer: %w", err)
	}
	return resp.StatusCode, time.Since(start), nil
}

// lines writes exactly text text lines and jsonLines JSON lines, each numbered, so that a
// test can count what reaches a backend against what the function wrote.
func (f *function) lines(log *slog.Logger, requestID string, text, jsonLines int) {
	for i := 1; i <= text; i++ {
		f.textf("INFO", requestID, "text line %d of %d", i, text)
	}
	for i := 1; i <= jsonLines; i++ {
		log.Info("json line", "n", i, "of", jsonLines)
	}
}

// sleep waits for d, or until ctx ends so a timed-out invocation does not outlive its
// deadline.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exhaustMemory grows the resident set by mb MiB and holds it until ctx ends. Memory is
// taken one MiB at a time and every page is written, because untouched pages are never
// made resident and a memory limit would not see them.
func (f *function) exhaustMemory(ctx context.Context, requestID string, mb int) error {
	if mb <= 0 {
		mb = defaultOOMMiB
	}
	f.textf("INFO", requestID, "allocating %d MiB", mb)
	page := os.Getpagesize()
	held := make([][]byte, 0, mb)
	for range mb {
		chunk := make([]byte, 1<<20)
		for i := 0; i < len(chunk); i += page {
			chunk[i] = 1
		}
		held = append(held, chunk)
	}
	f.textf("WARN", requestID, "holding %d MiB until the invocation ends", mb)
	<-ctx.Done()
	runtime.KeepAlive(held)
	return ctx.Err()
}

// flood writes lines short lines as fast as possible, to exercise the platform's buffering
// and the extension's throughput.
func (f *function) flood(lines int) error {
	if lines <= 0 {
		lines = defaultFloodLines
	}
	return f.out.exclusive(func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		for i := 1; i <= lines; i++ {
			if _, err := fmt.Fprintf(bw, "flood line %d of %d\n", i, lines); err != nil {
				return fmt.Errorf("writing flood line %d: %w", i, err)
			}
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("flushing flood lines: %w", err)
		}
		return nil
	})
}

func main() {
	f := newFunction(os.Stdout)
	f.announce()
	lambda.Start(f.handle)
}
