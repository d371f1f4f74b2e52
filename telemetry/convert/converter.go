// Package convert turns Telemetry API events into OpenTelemetry data: one span per
// lifecycle phase (init, invoke, restore) merged from its Start, RuntimeDone and Report
// events; a log record per function and extension log line and per platform event; and the
// FaaS metrics. It follows the mapping of the Lambda developer guide ("Converting Telemetry
// API Event objects to OpenTelemetry Spans") and the OpenTelemetry semantic conventions.
//
// A Converter keeps state across flushes, since a phase's events arrive over several
// deliveries: the Report of an invocation comes after the invocation has ended.
package convert

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// scopeName is the instrumentation scope of everything produced, and telemetry.sdk.name.
const scopeName = "lambda-otel"

// Bounds of the state kept between flushes.
const (
	// maxOpen is the most invocations waiting for their Report. Lambda runs invocations
	// one at a time per environment, so a handful is normal; more means Reports were
	// lost, and the oldest phases are closed as incomplete.
	maxOpen = 64
	// recentPhases is how many past phases are remembered for log lines that arrive late,
	// after their invocation's Report.
	recentPhases = 16
)

// Invocation is what an INVOKE event says of an invocation, before its telemetry arrives.
type Invocation struct {
	RequestID string
	// FunctionARN is the invoked ARN, with any alias or version qualifier.
	FunctionARN string
	// TraceHeader is the X-Ray header of the INVOKE event's tracing.
	TraceHeader string
	// At is when the INVOKE arrived: the invocation's start until platform.start says.
	At time.Time
}

// Data is the OpenTelemetry data of one flush. Empty signals have no resources.
type Data struct {
	Traces  ptrace.Traces
	Logs    plog.Logs
	Metrics pmetric.Metrics
}

// Options tune a Converter.
type Options struct {
	Config   Config
	Resource Resource
	// Start is when the extension started: the start of cumulative metrics.
	Start time.Time
	// IDs generates trace and span ids; nil uses a fast random source.
	IDs ids
}

// Converter turns events into Data. It is not safe for concurrent use: the extension calls
// it from its event loop only.
type Converter struct {
	cfg     Config
	res     Resource
	ids     ids
	learned learned

	open   map[string]*phase // invocations by request id, until their Report
	order  []*phase          // open invocations, oldest first
	recent [recentPhases]*phase
	nrec   int
	// env is the open init or restore phase.
	env *phase
	// current is the phase of the latest Start event, which owns log lines without a
	// request id.
	current *phase
	// lastEnv is the latest init or restore phase, which the next invocation completes.
	lastEnv *phase
	// coldPending is set until the first invocation after an init or restore: the
	// extension itself starts in one, so it begins set.
	coldPending bool

	ready   []*phase
	logs    plog.LogRecordSlice
	logData plog.Logs
	fixes   []logFix

	metrics *metrics

	sdk sdkData
	// instrumented is set while the function's SDK sends the root spans of invocations.
	instrumented bool
}

// logFix is a log record whose trace context is set when its phase's ids are known.
type logFix struct {
	rec   plog.LogRecord
	phase *phase
	// addID adds faas.invocation_id, for a line matched to its invocation by time.
	addID bool
}

// New returns a Converter.
func New(o Options) *Converter {
	c := &Converter{
		cfg:         o.Config,
		res:         o.Resource,
		ids:         o.IDs,
		open:        make(map[string]*phase),
		coldPending: true,
		metrics:     newMetrics(o.Config.Temporality, o.Start),
		sdk:         newSDKData(),
	}
	if c.ids == nil {
		c.ids = randomIDs{}
	}
	c.resetLogs()
	return c
}

func (c *Converter) resetLogs() {
	c.logData = plog.NewLogs()
	c.logs = c.logData.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	c.fixes = c.fixes[:0]
}

// apply gives the record its phase's trace context, and faas.invocation_id when addID.
func (f logFix) apply(gen ids) {
	f.phase.resolve(gen)
	f.rec.SetTraceID(f.phase.traceID)
	f.rec.SetSpanID(f.phase.spanID)
	if f.phase.sampled {
		f.rec.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	}
	if f.addID && f.phase.requestID != "" {
		f.rec.Attributes().PutStr(attrInvocationID, f.phase.requestID)
	}
}

// Invoked notes an INVOKE event: its ARN and trace header stand until the invocation's
// platform events say otherwise.
func (c *Converter) Invoked(inv Invocation) {
	if inv.FunctionARN != "" {
		c.learned.arn = inv.FunctionARN
	}
	if inv.RequestID == "" {
		return
	}
	p := c.invocation(inv.RequestID)
	p.arn = inv.FunctionARN
	p.invokedAt = inv.At
	if p.header == "" {
		p.header = inv.TraceHeader
	}
}

// Add converts events, in the order the platform delivered them. Log records are complete
// at once; a phase's span waits for its Report, or for Shutdown.
func (c *Converter) Add(events []telemetry.Event) {
	for i := range events {
		c.add(&events[i])
	}
}

func (c *Converter) add(e *telemetry.Event) {
	var owner *phase
	switch r := e.Record.(type) {
	case *telemetry.Log:
		c.logLine(e, r)
		return
	case *telemetry.InitStart:
		c.learned.instance(r.InstanceID, r.InstanceMaxMemory)
		owner = c.newEnv(kindInit, e, r)
	case *telemetry.RestoreStart:
		c.learned.instance(r.InstanceID, r.InstanceMaxMemory)
		owner = c.newEnv(kindRestore, e, r)
	case *telemetry.InitRuntimeDone:
		owner = c.envDone(kindInit, e, r, r.Status, r.ErrorType, r.Spans)
	case *telemetry.RestoreRuntimeDone:
		owner = c.envDone(kindRestore, e, r, r.Status, r.ErrorType, r.Spans)
	case *telemetry.InitReport:
		owner = c.envReport(kindInit, e, r, r.Status, r.ErrorType, r.Spans)
		c.metrics.initDuration(owner, r.Metrics.DurationMs)
	case *telemetry.RestoreReport:
		owner = c.envReport(kindRestore, e, r, r.Status, r.ErrorType, r.Spans)
	case *telemetry.Start:
		owner = c.start(e, r)
	case *telemetry.RuntimeDone:
		owner = c.platformEvent(r.RequestID, r.Tracing)
		owner.done, owner.doneAt = r, e.Time
		owner.observe(r.Status, r.ErrorType, r.Spans)
		c.outcome(owner)
	case *telemetry.Report:
		owner = c.report(e, r)
	case *telemetry.LogsDropped:
		c.metrics.logsDroppedBy(int64(r.DroppedRecords), int64(r.DroppedBytes))
	}
	if c.cfg.PlatformLogs.Has(e.Type) || isUnknownType(e) {
		c.platformLog(e, owner)
	}
}

// isUnknownType reports an event this package cannot type: it is kept as a log record
// whatever the platform log setting, so that nothing is lost silently.
func isUnknownType(e *telemetry.Event) bool {
	_, raw := e.Record.(*telemetry.Raw)
	return raw
}

// newEnv opens an init or restore phase. An earlier one still open (a suppressed init that
// runs again, or a lost Report) is closed as incomplete.
func (c *Converter) newEnv(kind phaseKind, e *telemetry.Event, r telemetry.Record) *phase {
	c.closeEnv("superseded by a later " + string(e.Type))
	p := &phase{kind: kind, start: r, startAt: e.Time, platform: true}
	c.env, c.lastEnv, c.current = p, p, p
	c.coldPending = true
	c.remember(p)
	return p
}

// envPhase returns the open init or restore phase, opening one when its Start was not seen.
func (c *Converter) envPhase(kind phaseKind) *phase {
	if c.env == nil || c.env.kind != kind {
		c.closeEnv("superseded by a later phase")
		c.env = &phase{kind: kind, platform: true}
		c.lastEnv = c.env
		c.coldPending = true
		c.remember(c.env)
	}
	return c.env
}

func (c *Converter) envDone(kind phaseKind, e *telemetry.Event, r telemetry.Record, st telemetry.Status, errType string, parts []telemetry.Span) *phase {
	p := c.envPhase(kind)
	p.done, p.doneAt = r, e.Time
	p.observe(st, errType, parts)
	return p
}

func (c *Converter) envReport(kind phaseKind, e *telemetry.Event, r telemetry.Record, st telemetry.Status, errType string, parts []telemetry.Span) *phase {
	p := c.envPhase(kind)
	p.report, p.reportAt = r, e.Time
	p.observe(st, errType, parts)
	c.env = nil
	c.ready = append(c.ready, p)
	return p
}

// closeEnv closes the open init or restore phase without its Report.
func (c *Converter) closeEnv(why string) {
	if p := c.env; p != nil {
		c.env = nil
		p.incomplete = why
		c.ready = append(c.ready, p)
	}
}

// start handles platform.start. A second Start for a request id whose phase already has
// one is an asynchronous retry, which reuses the id: the earlier attempt is closed.
func (c *Converter) start(e *telemetry.Event, r *telemetry.Start) *phase {
	if p, ok := c.open[r.RequestID]; ok && p.start != nil {
		if p.startAt.Equal(e.Time) {
			return p // the same event delivered twice
		}
		c.closeInvocation(p, "superseded by a retry with the same request id")
	}
	p := c.platformEvent(r.RequestID, r.Tracing)
	p.start, p.startAt = r, e.Time
	c.current = p
	return p
}

// report handles platform.report, which completes an invocation.
func (c *Converter) report(e *telemetry.Event, r *telemetry.Report) *phase {
	p := c.platformEvent(r.RequestID, r.Tracing)
	p.report, p.reportAt = r, e.Time
	p.observe(r.Status, r.ErrorType, r.Spans)
	if r.Metrics.InitDurationMs > 0 && !p.coldstart {
		p.coldstart = true
		c.metrics.coldstarts.add(1)
	}
	c.outcome(p)
	var env *phase
	if c.lastEnv != nil && c.lastEnv.next == p {
		env = c.lastEnv
	}
	c.metrics.report(r, env)
	c.closeInvocation(p, "")
	return p
}

// platformEvent returns the phase of an invocation's platform event, counting the
// invocation on its first one.
func (c *Converter) platformEvent(requestID string, tc *telemetry.TraceContext) *phase {
	p := c.invocation(requestID)
	p.setTracing(tc)
	if !p.platform {
		p.platform = true
		c.metrics.invocations.add(1)
		if c.coldPending {
			c.coldPending = false
			p.coldstart = true
			c.metrics.coldstarts.add(1)
		}
		if env := c.lastEnv; env != nil && env.next == nil {
			env.next = p
		}
	}
	return p
}

// invocation returns the open phase of requestID, opening one if needed.
func (c *Converter) invocation(requestID string) *phase {
	if p, ok := c.open[requestID]; ok {
		return p
	}
	if len(c.order) >= maxOpen {
		c.closeInvocation(c.order[0], "too many invocations without a platform.report")
	}
	p := &phase{kind: kindInvoke, requestID: requestID}
	c.open[requestID] = p
	c.order = append(c.order, p)
	c.remember(p)
	return p
}

// closeInvocation ends an invocation's phase: it is emitted at the next Take if it had
// platform events. why is empty when its Report came.
func (c *Converter) closeInvocation(p *phase, why string) {
	if c.open[p.requestID] == p {
		delete(c.open, p.requestID)
	}
	for i, q := range c.order {
		if q == p {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	p.incomplete = why
	if p.platform {
		c.ready = append(c.ready, p)
	}
}

// outcome counts an invocation's error, timeout and out-of-memory, once each per phase.
func (c *Converter) outcome(p *phase) {
	if p.failed() && !p.countedError {
		p.countedError = true
		c.metrics.errors.add(1)
	}
	if p.status == telemetry.StatusTimeout && !p.countedTimeout {
		p.countedTimeout = true
		c.metrics.timeouts.add(1)
	}
	if !p.outOfMemory && isOutOfMemory(p) {
		p.outOfMemory = true
		c.metrics.outOfMemory.add(1)
	}
}

// isOutOfMemory: the runtime says so, or a failed invocation used all its memory.
func isOutOfMemory(p *phase) bool {
	if p.errorType == "Runtime.OutOfMemory" {
		return true
	}
	r, ok := p.report.(*telemetry.Report)
	return ok && p.failed() && r.Metrics.MemorySizeMB > 0 && r.Metrics.MaxMemoryUsedMB >= r.Metrics.MemorySizeMB
}

// remember keeps p among the recent phases, for log lines that come after it closed.
func (c *Converter) remember(p *phase) {
	c.recent[c.nrec%recentPhases] = p
	c.nrec++
}

// owner finds the phase a log line belongs to: by request id when the line has one, else
// the latest phase that started at or before the line.
func (c *Converter) owner(requestID string, at time.Time) (p *phase, byTime bool) {
	if requestID != "" {
		if p, ok := c.open[requestID]; ok {
			return p, false
		}
		for i := range min(c.nrec, recentPhases) {
			if p := c.recent[(c.nrec-1-i)%recentPhases]; p.requestID == requestID {
				return p, false
			}
		}
		return c.invocation(requestID), false
	}
	if p := c.current; p != nil && (at.IsZero() || !p.startAt.After(at)) {
		return p, true
	}
	for i := range min(c.nrec, recentPhases) {
		p := c.recent[(c.nrec-1-i)%recentPhases]
		if !p.startAt.IsZero() && !p.startAt.After(at) {
			return p, true
		}
	}
	return nil, false
}

// Shutdown closes every open phase, as the environment is going away and their Reports
// will not come. reason is the SHUTDOWN event's: after a timeout or a failure, an
// invocation that had not finished is marked so and counted.
func (c *Converter) Shutdown(at time.Time, reason string) {
	why := "the environment shut down (" + reason + ") before its report"
	if c.env != nil {
		c.env.closedAt = at
	}
	c.closeEnv(why)
	for len(c.order) > 0 {
		p := c.order[0]
		p.closedAt = at
		if p.done == nil && p.status == "" {
			switch reason {
			case "timeout":
				p.status = telemetry.StatusTimeout
			case "failure":
				p.status = telemetry.StatusFailure
			}
			c.outcome(p)
		}
		c.closeInvocation(p, why)
	}
}

// Take returns what has been converted since the last Take: log records, the spans of
// phases that ended, and the metrics when any changed. now stamps the metric points; self
// holds the extension's own counters.
func (c *Converter) Take(now time.Time, self Self) Data {
	d := Data{Traces: ptrace.NewTraces(), Logs: c.logData, Metrics: pmetric.NewMetrics()}
	for _, f := range c.fixes {
		f.apply(c.ids)
	}
	if c.logs.Len() > 0 {
		c.fillResource(c.logData.ResourceLogs().At(0).Resource(), c.logData.ResourceLogs().At(0).ScopeLogs().At(0).Scope())
	} else {
		d.Logs = plog.NewLogs()
	}
	c.resetLogs()

	if len(c.ready) > 0 {
		rs := d.Traces.ResourceSpans().AppendEmpty()
		ss := rs.ScopeSpans().AppendEmpty()
		c.fillResource(rs.Resource(), ss.Scope())
		for _, p := range c.ready {
			c.span(ss.Spans(), p)
		}
		clear(c.ready)
		c.ready = c.ready[:0]
	}

	c.takeSDK(&d)

	if c.metrics.changed(self) {
		rm := d.Metrics.ResourceMetrics().AppendEmpty()
		sm := rm.ScopeMetrics().AppendEmpty()
		c.fillResource(rm.Resource(), sm.Scope())
		c.metrics.emit(sm.Metrics(), now, self)
	}
	return d
}

func (c *Converter) fillResource(r pcommon.Resource, s pcommon.InstrumentationScope) {
	c.res.fill(r.Attributes(), c.learned)
	s.SetName(scopeName)
	s.SetVersion(c.res.Version)
}

// randomIDs draws ids from math/rand/v2's generator: fast, seeded from the system, and
// unpredictable enough for trace ids, which are not secrets.
type randomIDs struct{}

func (randomIDs) TraceID() pcommon.TraceID {
	var id [16]byte
	for id == [16]byte{} {
		binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func (randomIDs) SpanID() pcommon.SpanID {
	var id [8]byte
	for id == [8]byte{} {
		binary.LittleEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
