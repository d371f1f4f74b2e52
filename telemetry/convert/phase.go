package convert

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lambda-otel/lambda-otel/internal/xray"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

// phaseKind is the lifecycle phase a span stands for.
type phaseKind uint8

const (
	kindInit phaseKind = iota
	kindInvoke
	kindRestore
)

// phase gathers the three events of one lifecycle phase (Start, RuntimeDone, Report) into
// what its span needs. It also stands for an invocation known only from its INVOKE event or
// its log lines, so that they share one trace; such a phase has no platform event and
// makes no span.
type phase struct {
	kind      phaseKind
	requestID string
	// arn is the invoked function ARN, from the INVOKE event.
	arn string
	// header is the X-Ray trace header; spanHint the platform's tracing.spanId.
	header, spanHint string
	// xr is header parsed, once xrParsed.
	xr       xray.Header
	xrParsed bool
	// invokedAt is when the INVOKE event came.
	invokedAt time.Time
	// sdkRoot is set once the function's SDK sent the root of its spans.
	sdkRoot bool

	start, done, report          telemetry.Record
	startAt, doneAt, reportAt    time.Time
	status                       telemetry.Status
	errorType                    string
	parts                        []telemetry.Span
	platform                     bool // a platform event of the phase was seen
	coldstart                    bool
	countedError, countedTimeout bool
	outOfMemory                  bool
	countedInit                  bool
	// incomplete says why the phase was closed without its Report; empty when it has one.
	incomplete string
	closedAt   time.Time
	// next is, for an init or restore phase, the first invocation after it, whose trace
	// the phase joins when both are seen before the phase's ids are needed.
	next *phase

	resolved       bool
	traceID        pcommon.TraceID
	spanID, parent pcommon.SpanID
	sampled        bool
}

// observe records the status and timed parts a RuntimeDone or Report carries. A Report's
// status is the phase's final word; its parts add to those of the RuntimeDone.
func (p *phase) observe(status telemetry.Status, errorType string, parts []telemetry.Span) {
	if status != "" {
		p.status = status
	}
	if errorType != "" {
		p.errorType = errorType
	}
	for _, s := range parts {
		if !containsPart(p.parts, s) {
			p.parts = append(p.parts, s)
		}
	}
}

func containsPart(parts []telemetry.Span, s telemetry.Span) bool {
	for _, p := range parts {
		if p.Name == s.Name && p.Start.Equal(s.Start) {
			return true
		}
	}
	return false
}

// setTracing keeps the first trace context the phase is given: the platform's events and
// the INVOKE event carry the same header.
func (p *phase) setTracing(tc *telemetry.TraceContext) {
	if tc == nil {
		return
	}
	if p.header == "" {
		p.header = tc.Value
	}
	if p.spanHint == "" {
		p.spanHint = tc.SpanID
	}
}

// failed reports whether the phase ended in anything but success.
func (p *phase) failed() bool {
	return p.status != "" && p.status != telemetry.StatusSuccess
}

// startTime is the Start event's time, else the end less the reported duration.
func (p *phase) startTime() time.Time {
	if !p.startAt.IsZero() {
		return p.startAt
	}
	if ms, at := p.reportedDuration(); ms > 0 && !at.IsZero() {
		return at.Add(-msDuration(ms))
	}
	return p.endTime()
}

// reportedDuration is the phase's duration from its Report or, failing that, its RuntimeDone,
// with the time of the event that gave it.
func (p *phase) reportedDuration() (float64, time.Time) {
	switch r := p.report.(type) {
	case *telemetry.Report:
		return r.Metrics.DurationMs, p.reportAt
	case *telemetry.InitReport:
		return r.Metrics.DurationMs, p.reportAt
	case *telemetry.RestoreReport:
		if r.Metrics != nil {
			return r.Metrics.DurationMs, p.reportAt
		}
	}
	if r, ok := p.done.(*telemetry.RuntimeDone); ok && r.Metrics != nil {
		return r.Metrics.DurationMs, p.doneAt
	}
	return 0, time.Time{}
}

// endTime is the Report's time; for a phase closed without one, the best time known.
func (p *phase) endTime() time.Time {
	for _, t := range []time.Time{p.reportAt, p.doneAt, p.closedAt, p.startAt} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// ids is the source of generated trace and span ids.
type ids interface {
	TraceID() pcommon.TraceID
	SpanID() pcommon.SpanID
}

// resolve fixes the phase's trace context the first time it is needed. An invocation takes
// its ids from its X-Ray header; an init or restore phase joins the trace of the invocation
// that followed it when that one is known by now, as siblings under the same parent.
// Without either, the phase starts a trace of its own, marked sampled since it is exported.
func (p *phase) resolve(gen ids) {
	if p.resolved {
		return
	}
	p.resolved = true
	if p.kind != kindInvoke && p.next != nil {
		p.next.resolve(gen)
		p.traceID, p.parent, p.sampled = p.next.traceID, p.next.parent, p.next.sampled
		p.spanID = gen.SpanID()
		return
	}
	h := xray.Parse(p.header)
	if h.HasTraceID {
		p.traceID = h.TraceID
		if h.HasParentID {
			p.parent = h.ParentID
		}
		p.sampled = h.Sampled == xray.SamplingYes
	} else {
		p.traceID, p.sampled = gen.TraceID(), true
	}
	if id, ok := xray.ParseSpanID(p.spanHint); ok {
		p.spanID = id
	} else {
		p.spanID = gen.SpanID()
	}
}
