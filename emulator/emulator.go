// Package emulator is the local Lambda execution environment behind lambda-emulator. It
// runs a function's runtime and its external extensions as processes and speaks the
// Runtime (2018-06-01), Extensions (2020-01-01), Telemetry (2022-07-01) and Logs
// (2020-08-15) APIs to them, delivering the full telemetry stream to subscribers. The
// lifecycle is Lambda's: a cold start, invocations, a reset after a timeout or a crash, and a
// shutdown with a deadline.
//
// One environment serves the invocations one at a time, as a single Lambda execution
// environment does.
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/destination"
	"github.com/lambda-otel/lambda-otel/emulator/eventconfig"
)

// Request is one invocation's input.
type Request struct {
	Payload []byte
	// TraceHeader is the caller's X-Amzn-Trace-Id, if any.
	TraceHeader string
	// ClientContext and CognitoIdentity are JSON documents the runtime receives in
	// Lambda-Runtime-Client-Context and Lambda-Runtime-Cognito-Identity.
	ClientContext   string
	CognitoIdentity string
	// Qualifier is the version or alias invoked, $LATEST when empty. Its event-invoke
	// config governs an asynchronous invocation.
	Qualifier string
}

// Response is what the caller of a synchronous invocation receives.
type Response struct {
	RequestID string
	Payload   []byte
	// FunctionError is "Unhandled" when Payload is an error document (the function's own,
	// or the platform's for a timeout, a crash or a failed init), as in X-Amz-Function-Error.
	FunctionError   string
	ExecutedVersion string
}

// Record is the outcome of one invocation, with the figures its platform.report carries.
type Record struct {
	RequestID string
	// Status is the report's: success, error or timeout; ErrorType says which error.
	Status    string
	ErrorType string
	// Cold is true for the first invocation of an environment; InitDuration is then its init.
	Cold         bool
	InitDuration time.Duration
	// Duration is the report's: from the invocation's start until the runtime and every
	// extension called next, extensions' work after the response included.
	Duration time.Duration
	// RuntimeDuration is until the runtime's answer, what the caller waited for.
	RuntimeDuration time.Duration
	// ExtensionOverhead is from the runtime's next to the last extension's next, Lambda's
	// PostRuntimeExtensionsDuration.
	ExtensionOverhead time.Duration
	BilledDurationMs  int64
	MaxMemoryUsedMB   int
	// ExtensionStartup is, on a cold start, how long each extension took from the start of
	// its process to its first event/next: the init time it costs the function.
	ExtensionStartup []ExtensionStartup
	// Attempt numbers the attempts of an asynchronous invocation from 1, which share its
	// request id; it is 0 for a synchronous one.
	Attempt int
}

// ExtensionStartup is one extension's time from process start to its first event/next.
type ExtensionStartup struct {
	Name     string
	Duration time.Duration
}

// ShutdownReport is the outcome of a shutdown.
type ShutdownReport struct {
	Reason string
	// Killed lists the extensions still running at the SHUTDOWN deadline.
	Killed   []string
	Duration time.Duration
	// Unfinished are the request ids of asynchronous invocations still queued, whose
	// remaining attempts did not run.
	Unfinished []string
}

// InitError is a failed init phase.
type InitError struct {
	ErrorType string
	Message   string
}

func (e *InitError) Error() string { return "init failed: " + e.ErrorType + ": " + e.Message }

// ErrClosed is returned by calls after Shutdown.
var ErrClosed = errors.New("emulator: shut down")

// Emulator is a Lambda execution environment for one function.
type Emulator struct {
	cfg Config
	ln  net.Listener
	srv *http.Server
	// store holds the event-invoke configs, async the asynchronous invocations still to
	// run, which runAsync runs until stopAsync.
	store     *eventconfig.Store
	async     *asyncQueue
	deliverer *destination.Deliverer
	stopAsync context.CancelFunc
	// token is held by whoever drives the environment: an invocation until its invoke phase
	// ends, an init, a shutdown.
	token chan struct{}
	bg    sync.WaitGroup
	outMu sync.Mutex

	mu       sync.Mutex
	env      *environment
	resets   int
	records  []Record
	started  int
	failures int
	closed   bool
}

// New validates cfg and starts serving the Lambda APIs on a loopback port. No process runs
// until Init or the first Invoke.
func New(cfg Config) (*Emulator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the Lambda APIs: %w", err)
	}
	e := &Emulator{cfg: cfg, ln: ln, token: make(chan struct{}, 1), async: newAsyncQueue(),
		deliverer: &destination.Deliverer{Dir: cfg.DestinationsDir, URLs: cfg.DestinationURLs, NewID: newUUID}}
	e.store = eventconfig.NewStore(eventconfig.Function{Partition: "aws", Region: cfg.Region, Account: cfg.AccountID,
		Name: cfg.FunctionName, Versions: []string{cfg.FunctionVersion}}, nil)
	if len(cfg.EventInvokeConfig) > 0 {
		if err := e.store.Load(cfg.EventInvokeConfig); err != nil {
			ln.Close()
			return nil, fmt.Errorf("loading the event-invoke config: %w", err)
		}
	}
	e.srv = &http.Server{Handler: e.apiHandler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	e.stopAsync = stop
	e.bg.Add(2)
	go func() {
		defer e.bg.Done()
		e.srv.Serve(ln)
	}()
	go func() {
		defer e.bg.Done()
		e.runAsync(ctx)
	}()
	return e, nil
}

// RuntimeAPI is the host:port of the Lambda APIs, the processes' AWS_LAMBDA_RUNTIME_API.
func (e *Emulator) RuntimeAPI() string { return e.ln.Addr().String() }

// Config is the configuration in use, defaults filled in.
func (e *Emulator) Config() Config { return e.cfg }

func (e *Emulator) acquire(ctx context.Context) error {
	select {
	case e.token <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the environment: %w", ctx.Err())
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		e.release()
		return ErrClosed
	}
	return nil
}

func (e *Emulator) release() { <-e.token }

// Init runs a cold start now, as Lambda may before the first invocation. A failed init
// returns an *InitError; the next invocation then retries it, as Lambda does.
func (e *Emulator) Init(ctx context.Context) error {
	if err := e.acquire(ctx); err != nil {
		return err
	}
	defer e.release()
	_, err := e.environment()
	return err
}

// environment returns a ready environment, starting one if needed. The token is held.
func (e *Emulator) environment() (*environment, error) {
	e.mu.Lock()
	env := e.env
	phase := "init"
	if e.resets > 0 {
		phase = "invoke"
	}
	e.mu.Unlock()
	if env != nil && env.healthy() {
		return env, nil
	}
	if env != nil {
		e.reset(env, reasonFailure)
	}
	timeout := e.cfg.InitTimeout
	if phase == "invoke" {
		// A suppressed init runs with the invocation, under the function's timeout.
		timeout = e.cfg.Timeout
	}
	env = e.newEnvironment(phase)
	e.mu.Lock()
	e.env = env
	e.mu.Unlock()
	if f := env.initialize(timeout); f != nil {
		e.diag("init failed: %s: %s", f.errorType, f.message)
		e.reset(env, reasonFailure)
		return nil, &InitError{ErrorType: f.errorType, Message: f.message}
	}
	return env, nil
}

// reset shuts env down after a failure; the next invocation starts a new one.
func (e *Emulator) reset(env *environment, reason string) ShutdownReport {
	start := time.Now()
	killed := env.shutdown(reason)
	e.mu.Lock()
	if e.env == env {
		e.env = nil
	}
	e.resets++
	if reason != reasonSpindown || len(killed) > 0 {
		e.failures++
	}
	e.mu.Unlock()
	for _, name := range killed {
		e.diag("extension %s was still running at the SHUTDOWN deadline and was killed", name)
	}
	return ShutdownReport{Reason: reason, Killed: killed, Duration: time.Since(start)}
}

// Invoke runs one synchronous invocation and returns the caller's answer as soon as the
// runtime gives it; the invoke phase (extensions' work after the response, the report)
// goes on until every extension has called next, and the next Invoke waits for it.
func (e *Emulator) Invoke(ctx context.Context, req Request) (*Response, error) {
	if len(req.Payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("invoking: payload of %d bytes is more than the %d allowed", len(req.Payload), MaxPayloadBytes)
	}
	return e.invoke(ctx, req, newUUID(), 0, nil)
}

// invoke runs an invocation with the request id id; attempt is its Record.Attempt. done,
// if not nil, is closed when the invocation has ended and its Record is kept.
func (e *Emulator) invoke(ctx context.Context, req Request, id string, attempt int, done chan struct{}) (*Response, error) {
	if err := e.acquire(ctx); err != nil {
		return nil, err
	}
	inv := &invocation{
		id:            id,
		payload:       req.Payload,
		arn:           fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", e.cfg.Region, e.cfg.AccountID, e.cfg.FunctionName),
		trace:         newTrace(req.TraceHeader, e.cfg.Tracing == "Active"),
		clientContext: req.ClientContext,
		cognito:       req.CognitoIdentity,
		respond:       make(chan *Response, 1),
	}
	e.mu.Lock()
	e.started++
	e.mu.Unlock()
	env, err := e.environment()
	var ie *InitError
	if errors.As(err, &ie) {
		e.release()
		if done != nil {
			close(done)
		}
		return errorResponse(inv.id, &failure{errorType: ie.ErrorType, message: ie.Message}), nil
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer e.release()
		if done != nil {
			defer close(done)
		}
		rec, reason := env.invoke(inv)
		rec.Attempt = attempt
		e.mu.Lock()
		e.records = append(e.records, rec)
		e.mu.Unlock()
		if reason != "" {
			e.reset(env, reason)
		}
	}()
	select {
	case resp := <-inv.respond:
		return resp, nil
	case <-ctx.Done():
		// An answer that came with the cancellation is still the answer.
		select {
		case resp := <-inv.respond:
			return resp, nil
		default:
		}
		return nil, fmt.Errorf("waiting for invocation %s: %w", inv.id, ctx.Err())
	}
}

// Invocations is the number of invocations started so far.
func (e *Emulator) Invocations() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// Records returns the invocations finished so far, in order.
func (e *Emulator) Records() []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Record(nil), e.records...)
}

// Failed reports whether the environment failed at any point: a failed init, an invocation
// that needed a reset, or an extension killed at the SHUTDOWN deadline.
func (e *Emulator) Failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failures > 0
}

// Shutdown waits for the invocation in progress, shuts the environment down (SIGTERM to the
// runtime, SHUTDOWN to extensions with the deadline) and stops serving the APIs. Later
// calls return ErrClosed.
func (e *Emulator) Shutdown(ctx context.Context) (ShutdownReport, error) {
	if err := e.acquire(ctx); err != nil {
		return ShutdownReport{}, err
	}
	e.mu.Lock()
	e.closed = true
	env := e.env
	e.mu.Unlock()
	var rep ShutdownReport
	if env != nil {
		rep = e.reset(env, reasonSpindown)
	}
	e.srv.Close()
	e.stopAsync()
	e.release()
	e.bg.Wait()
	for _, ev := range e.async.drain() {
		e.diag("asynchronous event %s was still queued at shutdown after %d attempts; its remaining attempts did not run", ev.id, ev.attempts)
		rep.Unfinished = append(rep.Unfinished, ev.id)
	}
	return rep, nil
}

// current is the environment the APIs serve.
func (e *Emulator) current() *environment {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.env
}

// newUUID returns a random (version 4) UUID, the form of request and extension ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}
