package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
	"github.com/lambda-otel/lambda-otel/emulator/process"
)

// Lifecycle states of an environment.
type envState int

const (
	stateInit envState = iota
	stateReady
	stateInvoking
	stateShutdown
	stateDone
)

// Telemetry statuses and shutdown reasons. Reasons are lower case, as the reference
// emulator sends them; extensions compare them without regard to case.
const (
	statusSuccess = "success"
	statusError   = "error"
	statusFailure = "failure"
	statusTimeout = "timeout"

	reasonSpindown = "spindown"
	reasonTimeout  = "timeout"
	reasonFailure  = "failure"
)

// runtimeGrace is what Lambda keeps of the shutdown window for the runtime's SIGTERM.
const runtimeGrace = 300 * time.Millisecond

// rssInterval is how often the environment's memory is sampled.
const rssInterval = 10 * time.Millisecond

// failure is why a phase did not succeed.
type failure struct {
	status    string
	errorType string
	message   string
}

// environment is one execution environment: the extension processes, the runtime, their
// subscriptions, from init to shutdown. The goroutine that holds the emulator's token
// drives it (initialize, invoke, shutdown); the API handlers change its state under mu and
// call notify, and the driver waits for the state it needs with await.
type environment struct {
	e        *Emulator
	cfg      Config
	hub      *delivery.Hub
	phase    string
	instance string
	stream   string
	rtEnv    []string
	extEnv   []string

	changed  chan struct{}
	done     chan struct{}
	rtInvoke chan *invocation
	wg       sync.WaitGroup
	emitMu   sync.Mutex

	mu           sync.Mutex
	state        envState
	exts         []*extension
	runtime      *process.Process
	rtNextCalled bool
	rtInitError  *failure
	cur          *invocation
	invokes      int
	oom          bool
	peakRSS      int64
	frozen       bool
	initDuration time.Duration
}

// extension is one external extension of the environment.
type extension struct {
	name   string
	path   string
	proc   *process.Process
	id     string
	events []string
	// registered and ready are guarded by environment.mu: ready means it waits in next with
	// nothing handed to it.
	registered bool
	ready      bool
	failure    *failure
	readyAt    time.Time
	queue      chan []byte
	// startedAt is when its process was started; startup, from then to its first next,
	// is the init time it costs. Both are guarded by environment.mu.
	startedAt time.Time
	startup   time.Duration
}

func (x *extension) wants(event string) bool { return slices.Contains(x.events, event) }

// invocation is one invoke: its request, and what the runtime did with it.
type invocation struct {
	id            string
	payload       []byte
	arn           string
	trace         trace
	clientContext string
	cognito       string
	respond       chan *Response

	start    time.Time
	deadline time.Time

	// Set under environment.mu by the runtime's calls.
	answered   bool
	response   []byte
	fnError    *failure
	errorBody  []byte
	answerAt   time.Time
	answeredAt time.Time
	nextAt     time.Time
	doneNext   bool
}

func (e *Emulator) newEnvironment(phase string) *environment {
	env := &environment{
		e:        e,
		cfg:      e.cfg,
		phase:    phase,
		instance: newUUID(),
		changed:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		rtInvoke: make(chan *invocation, 1),
	}
	env.stream = time.Now().UTC().Format("2006/01/02") + "/[" + e.cfg.FunctionVersion + "]" + randomHex(32)
	env.hub = delivery.New(delivery.Options{OnGenerated: func(ev delivery.Event) { e.record(ev, ev.Encode()) }})
	env.rtEnv, env.extEnv = e.cfg.environmentVariables(e.RuntimeAPI(), env.stream, "on-demand")
	env.wg.Add(1)
	go env.sampleMemory()
	return env
}

func (env *environment) notify() {
	select {
	case env.changed <- struct{}{}:
	default:
	}
}

// await waits until cond, called under mu, holds, or the deadline passes.
func (env *environment) await(deadline time.Time, cond func() bool) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		env.mu.Lock()
		ok := cond()
		env.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-env.changed:
		case <-timer.C:
			env.mu.Lock()
			defer env.mu.Unlock()
			return cond()
		}
	}
}

// initialize runs the init phase: extensions start and register, the runtime starts, and
// the phase ends when the runtime and every registered extension have called next.
func (env *environment) initialize(timeout time.Duration) *failure {
	start := time.Now()
	deadline := start.Add(timeout)
	env.emit(delivery.TypeInitStart, delivery.InitStart{
		InitializationType: "on-demand", Phase: env.phase, RuntimeVersion: env.cfg.RuntimeVersion,
		FunctionName: env.cfg.FunctionName, FunctionVersion: env.cfg.FunctionVersion,
		InstanceID: env.instance, InstanceMaxMemory: env.cfg.MemoryMB,
	})
	if f := env.startExtensions(); f != nil {
		return env.failInit(start, f, false)
	}
	registered := env.await(deadline, func() bool {
		return env.extFailure() != nil || allOf(env.exts, func(x *extension) bool { return x.registered })
	})
	if f := env.locked(env.extFailure); f != nil {
		return env.failInit(start, f, false)
	}
	if !registered {
		return env.failInit(start, initTimeout(timeout), false)
	}
	if f := env.startRuntime(); f != nil {
		return env.failInit(start, f, false)
	}
	ran := env.await(deadline, func() bool { return env.rtNextCalled || env.initRuntimeFailure() != nil })
	if f := env.locked(env.initRuntimeFailure); f != nil {
		return env.failInit(start, f, false)
	}
	if !ran {
		return env.failInit(start, initTimeout(timeout), false)
	}
	env.emit(delivery.TypeInitRuntimeDone, delivery.InitRuntimeDone{InitializationType: "on-demand", Phase: env.phase, Status: statusSuccess})
	ready := env.await(deadline, func() bool {
		return env.initRuntimeFailure() != nil || allOf(env.exts, func(x *extension) bool { return !x.registered || x.ready })
	})
	if f := env.locked(env.initRuntimeFailure); f != nil {
		return env.failInit(start, f, true)
	}
	if !ready {
		return env.failInit(start, initTimeout(timeout), true)
	}
	env.mu.Lock()
	env.state = stateReady
	env.initDuration = time.Since(start)
	env.mu.Unlock()
	env.hub.Seal()
	env.emit(delivery.TypeInitReport, delivery.InitReport{
		InitializationType: "on-demand", Phase: env.phase, Status: statusSuccess,
		Metrics: delivery.InitReportMetrics{DurationMs: delivery.Ms(env.initDuration)},
	})
	return nil
}

// initRuntimeFailure is what ended runtime init early, if anything. Called under mu.
func (env *environment) initRuntimeFailure() *failure {
	switch {
	case env.rtInitError != nil:
		return env.rtInitError
	case env.oom:
		return &failure{statusError, "Runtime.OutOfMemory", "Runtime exited with error: out of memory"}
	case env.runtime != nil && env.runtime.Exited():
		return &failure{statusError, "Runtime.ExitError", "Runtime exited with error: " + process.ExitDescription(env.runtime.ExitError())}
	}
	return env.extFailure()
}

// failInit reports a failed init and leaves the environment to be shut down.
func (env *environment) failInit(start time.Time, f *failure, runtimeDoneSent bool) *failure {
	if f.status == "" {
		f.status = statusError
	}
	if !runtimeDoneSent {
		env.emit(delivery.TypeInitRuntimeDone, delivery.InitRuntimeDone{InitializationType: "on-demand", Phase: env.phase, Status: f.status, ErrorType: f.errorType})
	}
	env.emit(delivery.TypeInitReport, delivery.InitReport{
		InitializationType: "on-demand", Phase: env.phase, Status: f.status, ErrorType: f.errorType,
		Metrics: delivery.InitReportMetrics{DurationMs: delivery.Ms(time.Since(start))},
	})
	return f
}

func (env *environment) startExtensions() *failure {
	files, err := env.cfg.extensionFiles()
	if err != nil {
		return &failure{statusError, "Extension.LaunchError", err.Error()}
	}
	for _, path := range files {
		x := &extension{name: filepath.Base(path), path: path, queue: make(chan []byte, 2), startedAt: time.Now()}
		p, err := process.Start(process.Spec{
			Path: path, Dir: filepath.Dir(filepath.Clean(env.cfg.ExtensionsDir)), Env: env.extEnv,
			OnLine: func(line []byte, at time.Time) { env.logLine(delivery.TypeExtensionLog, line, at) },
		})
		if err != nil {
			return &failure{statusError, "Extension.LaunchError", fmt.Sprintf("extension %s: %v", x.name, err)}
		}
		x.proc = p
		env.mu.Lock()
		env.exts = append(env.exts, x)
		env.mu.Unlock()
		env.watch(p)
	}
	return nil
}

func (env *environment) startRuntime() *failure {
	candidates := env.cfg.bootstrapCandidates()
	path, ok := findBootstrap(candidates)
	if !ok {
		return &failure{statusError, "Runtime.InvalidEntrypoint", fmt.Sprintf("Couldn't find valid bootstrap(s): %v", candidates)}
	}
	p, err := process.Start(process.Spec{
		Path: path, Dir: env.cfg.TaskDir, Env: env.rtEnv,
		OnLine: func(line []byte, at time.Time) { env.logLine(delivery.TypeFunction, line, at) },
	})
	if err != nil {
		return &failure{statusError, "Runtime.InvalidEntrypoint", err.Error()}
	}
	env.mu.Lock()
	env.runtime = p
	env.mu.Unlock()
	env.watch(p)
	return nil
}

// watch wakes the driver when p exits.
func (env *environment) watch(p *process.Process) {
	env.wg.Add(1)
	go func() {
		defer env.wg.Done()
		select {
		case <-p.Done():
			env.notify()
		case <-env.done:
		}
	}()
}

// extFailure is the first extension failure: an error it reported, or its exit. Called
// under mu.
func (env *environment) extFailure() *failure {
	for _, x := range env.exts {
		if x.failure != nil {
			return x.failure
		}
		if x.proc.Exited() && env.state != stateShutdown {
			x.failure = &failure{statusError, "Extension.Crash", fmt.Sprintf("extension %s exited: %s", x.name, process.ExitDescription(x.proc.ExitError()))}
			return x.failure
		}
	}
	return nil
}

// healthy reports whether the environment can take another invocation.
func (env *environment) healthy() bool {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.state == stateReady && env.runtime != nil && !env.runtime.Exited() && env.extFailure() == nil && !env.oom
}

// invoke runs one invocation. The caller's answer goes out on inv.respond as soon as it is
// known; invoke returns when the invoke phase is over, with its record and whether the
// environment must be reset.
func (env *environment) invoke(inv *invocation) (Record, string) {
	env.thaw()
	env.mu.Lock()
	env.state = stateInvoking
	env.cur = inv
	cold := env.invokes == 0
	env.invokes++
	inv.start = time.Now()
	inv.deadline = inv.start.Add(env.cfg.Timeout)
	env.mu.Unlock()

	rec := Record{RequestID: inv.id, Cold: cold}
	if cold {
		rec.InitDuration = env.initDuration
		rec.ExtensionStartup = env.startups()
	}
	env.emit(delivery.TypeStart, delivery.Start{RequestID: inv.id, Version: env.cfg.FunctionVersion, Tracing: inv.trace.telemetry()})
	invokeEvent := env.invokeEvent(inv)
	env.mu.Lock()
	for _, x := range env.exts {
		if x.registered && x.wants("INVOKE") {
			x.ready = false
			x.queue <- invokeEvent
		}
	}
	env.mu.Unlock()
	env.rtInvoke <- inv

	env.await(inv.deadline, func() bool {
		return inv.answered || env.runtime.Exited() || env.oom
	})
	f := env.runtimeFailure(inv)
	env.mu.Lock()
	answered := inv.answered
	env.mu.Unlock()
	if answered {
		rec.RuntimeDuration = inv.answerAt.Sub(inv.start)
		inv.respond <- env.answer(inv)
	} else {
		if f == nil {
			f = invokeTimeout(env.cfg.Timeout)
		}
		rec.RuntimeDuration = time.Since(inv.start)
		inv.respond <- errorResponse(inv.id, f)
	}
	if f == nil && !env.await(inv.deadline, func() bool { return inv.doneNext || env.runtime.Exited() || env.oom }) {
		f = invokeTimeout(env.cfg.Timeout)
	}
	if f == nil {
		f = env.runtimeFailure(inv)
	}
	if f != nil && f.status != statusTimeout {
		env.runtime.Kill()
	}
	env.runtime.Sync()
	env.emitRuntimeDone(inv, f)

	if f == nil {
		if !env.await(inv.deadline, func() bool {
			return env.extFailure() != nil || allOf(env.exts, func(x *extension) bool { return !x.registered || !x.wants("INVOKE") || x.ready })
		}) {
			f = invokeTimeout(env.cfg.Timeout)
		} else if xf := env.locked(env.extFailure); xf != nil {
			f = xf
		}
	}
	end := time.Now()
	if f == nil {
		end = env.lastExtensionNext(inv)
	}
	rec.Duration = end.Sub(inv.start)
	if !inv.nextAt.IsZero() && end.After(inv.nextAt) {
		rec.ExtensionOverhead = end.Sub(inv.nextAt)
	}
	for _, x := range env.exts {
		x.proc.Sync()
	}
	rec.Status = statusSuccess
	switch {
	case f != nil:
		rec.Status, rec.ErrorType = reportStatus(f), f.errorType
	case inv.fnError != nil:
		rec.Status, rec.ErrorType = statusError, inv.fnError.errorType
	}
	rec.BilledDurationMs = int64(math.Ceil(delivery.Ms(rec.Duration)))
	rec.MaxMemoryUsedMB = env.maxMemoryMB()
	env.emitReport(inv, rec)

	env.mu.Lock()
	env.cur = nil
	if env.state == stateInvoking {
		env.state = stateReady
	}
	env.mu.Unlock()
	switch {
	case f == nil:
		if env.cfg.Freeze {
			env.freeze()
		}
		return rec, ""
	case f.status == statusTimeout:
		return rec, reasonTimeout
	default:
		return rec, reasonFailure
	}
}

// startups lists how long each registered extension took from its start to its first next.
func (env *environment) startups() []ExtensionStartup {
	env.mu.Lock()
	defer env.mu.Unlock()
	var out []ExtensionStartup
	for _, x := range env.exts {
		if x.registered {
			out = append(out, ExtensionStartup{Name: x.name, Duration: x.startup})
		}
	}
	return out
}

// lastExtensionNext is when the last extension that took the INVOKE called next again, or
// the runtime's next when none did.
func (env *environment) lastExtensionNext(inv *invocation) time.Time {
	env.mu.Lock()
	defer env.mu.Unlock()
	end := inv.nextAt
	for _, x := range env.exts {
		if x.registered && x.wants("INVOKE") && x.readyAt.After(end) {
			end = x.readyAt
		}
	}
	if end.IsZero() {
		end = time.Now()
	}
	return end
}

// locked calls f under mu.
func (env *environment) locked(f func() *failure) *failure {
	env.mu.Lock()
	defer env.mu.Unlock()
	return f()
}

func initTimeout(limit time.Duration) *failure {
	return &failure{statusTimeout, "Sandbox.Timedout", fmt.Sprintf("Init timed out after %.2f seconds", limit.Seconds())}
}

func invokeTimeout(limit time.Duration) *failure {
	return &failure{statusTimeout, "Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", limit.Seconds())}
}

// runtimeFailure is how the runtime failed the invocation, if it did.
func (env *environment) runtimeFailure(inv *invocation) *failure {
	env.mu.Lock()
	defer env.mu.Unlock()
	switch {
	case env.oom:
		return &failure{statusFailure, "Runtime.OutOfMemory", "RequestId: " + inv.id + " Error: Runtime exited with error: out of memory"}
	case env.runtime.Exited():
		return &failure{statusFailure, "Runtime.ExitError", "RequestId: " + inv.id + " Error: Runtime exited with error: " + process.ExitDescription(env.runtime.ExitError())}
	}
	return nil
}

func reportStatus(f *failure) string {
	if f.status == statusTimeout {
		return statusTimeout
	}
	return statusError
}

func (env *environment) answer(inv *invocation) *Response {
	env.mu.Lock()
	defer env.mu.Unlock()
	if inv.fnError != nil {
		return &Response{RequestID: inv.id, Payload: inv.errorBody, FunctionError: "Unhandled", ExecutedVersion: env.cfg.FunctionVersion}
	}
	return &Response{RequestID: inv.id, Payload: inv.response, ExecutedVersion: env.cfg.FunctionVersion}
}

func errorResponse(id string, f *failure) *Response {
	return &Response{RequestID: id, Payload: delivery.ErrorDocument(f.errorType, f.message), FunctionError: "Unhandled"}
}

func (env *environment) invokeEvent(inv *invocation) []byte {
	type tracing struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	ev := struct {
		EventType          string   `json:"eventType"`
		DeadlineMs         int64    `json:"deadlineMs"`
		RequestID          string   `json:"requestId"`
		InvokedFunctionArn string   `json:"invokedFunctionArn"`
		Tracing            *tracing `json:"tracing,omitempty"`
	}{"INVOKE", inv.deadline.UnixMilli(), inv.id, inv.arn, nil}
	if inv.trace.ok() {
		ev.Tracing = &tracing{Type: traceType, Value: inv.trace.value()}
	}
	b, _ := json.Marshal(ev)
	return b
}

func (env *environment) emitRuntimeDone(inv *invocation, f *failure) {
	env.mu.Lock()
	rd := delivery.RuntimeDone{RequestID: inv.id, Status: statusSuccess, Tracing: inv.trace.telemetry()}
	switch {
	case f != nil:
		rd.Status, rd.ErrorType = f.status, f.errorType
	case inv.fnError != nil:
		rd.Status, rd.ErrorType = statusError, inv.fnError.errorType
	}
	end := inv.nextAt
	if end.IsZero() {
		end = time.Now()
	}
	rd.Metrics = &delivery.RuntimeDoneMetrics{DurationMs: delivery.Ms(end.Sub(inv.start)), ProducedBytes: int64(len(inv.response))}
	if inv.answered {
		rd.Spans = []delivery.Span{
			{Name: "responseLatency", Start: inv.start.UTC().Format(delivery.TimeFormat), DurationMs: delivery.Ms(inv.answerAt.Sub(inv.start))},
			{Name: "responseDuration", Start: inv.answerAt.UTC().Format(delivery.TimeFormat), DurationMs: delivery.Ms(inv.answeredAt.Sub(inv.answerAt))},
		}
		if !inv.nextAt.IsZero() {
			rd.Spans = append(rd.Spans, delivery.Span{Name: "runtimeOverhead", Start: inv.answeredAt.UTC().Format(delivery.TimeFormat), DurationMs: delivery.Ms(inv.nextAt.Sub(inv.answeredAt))})
		}
	}
	env.mu.Unlock()
	env.emit(delivery.TypeRuntimeDone, rd)
	if f != nil && f.status != statusTimeout {
		env.emit(delivery.TypeFault, fmt.Sprintf("RequestId: %s Status: error \tErrorType: %s", inv.id, f.errorType))
	}
	env.emit(delivery.TypeEnd, delivery.Start{RequestID: inv.id})
}

func (env *environment) emitReport(inv *invocation, rec Record) {
	r := delivery.Report{
		RequestID: inv.id, Status: rec.Status, ErrorType: rec.ErrorType, Tracing: inv.trace.telemetry(),
		Metrics: delivery.ReportMetrics{
			DurationMs: delivery.Ms(rec.Duration), BilledDurationMs: rec.BilledDurationMs,
			MemorySizeMB: env.cfg.MemoryMB, MaxMemoryUsedMB: rec.MaxMemoryUsedMB,
		},
	}
	if rec.Cold {
		ms := delivery.Ms(rec.InitDuration)
		r.Metrics.InitDurationMs = &ms
	}
	env.emit(delivery.TypeReport, r)
}

// shutdown ends the environment: SIGTERM to the runtime, then SHUTDOWN to the extensions
// that asked for it with a deadline the emulator enforces by killing what still runs. It
// returns the extensions that had to be killed.
func (env *environment) shutdown(reason string) []string {
	env.thaw()
	env.mu.Lock()
	env.state = stateShutdown
	rt := env.runtime
	env.mu.Unlock()
	start := time.Now()
	deadline := start.Add(env.cfg.ShutdownTimeout)
	if rt != nil {
		rt.Signal(syscall.SIGTERM)
		if !env.await(minTime(start.Add(runtimeGrace), deadline), rt.Exited) {
			rt.Kill()
		}
		rt.Sync()
	}
	env.hub.Flush()
	body, _ := json.Marshal(struct {
		EventType      string `json:"eventType"`
		ShutdownReason string `json:"shutdownReason"`
		DeadlineMs     int64  `json:"deadlineMs"`
	}{"SHUTDOWN", reason, deadline.UnixMilli()})
	env.mu.Lock()
	var waitFor, rest []*extension
	for _, x := range env.exts {
		if x.registered && x.wants("SHUTDOWN") && x.failure == nil && !x.proc.Exited() {
			x.ready = false
			select {
			case x.queue <- body:
			default:
			}
			waitFor = append(waitFor, x)
		} else {
			rest = append(rest, x)
		}
	}
	env.mu.Unlock()
	env.await(deadline, func() bool { return allOf(waitFor, func(x *extension) bool { return x.proc.Exited() }) })
	var killed []string
	for _, x := range waitFor {
		if !x.proc.Exited() {
			killed = append(killed, x.name)
		}
		x.proc.Close()
	}
	for _, x := range rest {
		x.proc.Close()
	}
	if rt != nil {
		rt.Close()
	}
	env.hub.Close()
	env.mu.Lock()
	env.state = stateDone
	env.mu.Unlock()
	close(env.done)
	env.wg.Wait()
	return killed
}

// freeze stops every process and every delivery until thaw.
func (env *environment) freeze() {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.frozen {
		return
	}
	env.frozen = true
	env.hub.Pause()
	for _, p := range env.procs() {
		p.Freeze()
	}
}

func (env *environment) thaw() {
	env.mu.Lock()
	defer env.mu.Unlock()
	if !env.frozen {
		return
	}
	env.frozen = false
	for _, p := range env.procs() {
		p.Thaw()
	}
	env.hub.Resume()
}

// procs are the environment's processes. Called under mu.
func (env *environment) procs() []*process.Process {
	ps := make([]*process.Process, 0, len(env.exts)+1)
	for _, x := range env.exts {
		ps = append(ps, x.proc)
	}
	if env.runtime != nil {
		ps = append(ps, env.runtime)
	}
	return ps
}

// sampleMemory tracks the environment's peak resident memory and flags an invocation that
// goes over the function's memory size.
func (env *environment) sampleMemory() {
	defer env.wg.Done()
	tick := time.NewTicker(rssInterval)
	defer tick.Stop()
	limit := env.memoryLimit()
	for {
		select {
		case <-env.done:
			return
		case <-tick.C:
		}
		env.sampleOnce(limit)
	}
}

func (env *environment) sampleOnce(limit int64) {
	env.mu.Lock()
	procs := env.procs()
	skip := env.frozen || env.state == stateShutdown
	env.mu.Unlock()
	if skip {
		return
	}
	var total int64
	for _, p := range procs {
		total += p.RSS()
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	env.peakRSS = max(env.peakRSS, total)
	if total > limit && !env.oom {
		env.oom = true
		env.notify()
	}
}

func (env *environment) memoryLimit() int64 { return int64(env.cfg.MemoryMB) << 20 }

// maxMemoryMB is the peak so far, with a last sample: short invocations end between ticks.
func (env *environment) maxMemoryMB() int {
	env.sampleOnce(env.memoryLimit())
	env.mu.Lock()
	defer env.mu.Unlock()
	return int(math.Ceil(float64(env.peakRSS) / (1 << 20)))
}

func allOf[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
