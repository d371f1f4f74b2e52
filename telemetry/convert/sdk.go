package convert

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lambda-otel/lambda-otel/internal/xray"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

// sdkData is what the function's own OpenTelemetry SDK sent to the local receiver since
// the last Take, already joined to the invocations.
type sdkData struct {
	traces  ptrace.Traces
	logs    plog.Logs
	metrics pmetric.Metrics
	// parents are the SDK spans to put under their invocation's platform span once its
	// ids are known.
	parents []spanFix
	// untraced are the spans and log records of no invocation's trace, to be matched to
	// the invocation running when they were made once the invocations' ends are known.
	untracedSpans []ptrace.Span
	untracedLogs  []plog.LogRecord
}

// spanFix is an SDK span whose parent is its invocation's X-Ray context.
type spanFix struct {
	span  ptrace.Span
	phase *phase
}

func newSDKData() sdkData {
	return sdkData{traces: ptrace.NewTraces(), logs: plog.NewLogs(), metrics: pmetric.NewMetrics()}
}

// AddReceived takes what the function's SDK sent. Its spans and logs are joined to the
// invocation they belong to:
//   - a span whose trace id and parent are an invocation's X-Ray context (its Root and
//     Parent) is the invocation's SDK root: it becomes a child of the platform's
//     invocation span, so that one trace holds both;
//   - a span or log record of an invocation's trace, or, outside any, made during an
//     invocation (Lambda runs one at a time), gets faas.invocation_id when it has none;
//   - a log record with no trace context made during an invocation gets the invocation's.
//
// Their resources are completed at Take.
func (c *Converter) AddReceived(rs []telemetry.Received) {
	for i := range rs {
		r := &rs[i]
		switch {
		case r.Traces != (ptrace.Traces{}):
			c.sdkTraces(r.Traces)
		case r.Logs != (plog.Logs{}):
			c.sdkLogs(r.Logs)
		case r.Metrics != (pmetric.Metrics{}):
			r.Metrics.ResourceMetrics().MoveAndAppendTo(c.sdk.metrics.ResourceMetrics())
		}
	}
}

func (c *Converter) sdkTraces(td ptrace.Traces) {
	all := c.sdk.traces.ResourceSpans()
	n := all.Len()
	td.ResourceSpans().MoveAndAppendTo(all)
	for i := n; i < all.Len(); i++ {
		for _, ss := range all.At(i).ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				p := c.traceOwner(s.TraceID())
				if p == nil {
					c.sdk.untracedSpans = append(c.sdk.untracedSpans, s)
					continue
				}
				if p.isSDKRoot(s.ParentSpanID()) {
					p.sdkRoot = true
					c.instrumented = true
					c.sdk.parents = append(c.sdk.parents, spanFix{span: s, phase: p})
				}
				addInvocationID(s.Attributes(), p)
			}
		}
	}
}

func (c *Converter) sdkLogs(ld plog.Logs) {
	all := c.sdk.logs.ResourceLogs()
	n := all.Len()
	ld.ResourceLogs().MoveAndAppendTo(all)
	for i := n; i < all.Len(); i++ {
		for _, sl := range all.At(i).ScopeLogs().All() {
			for _, rec := range sl.LogRecords().All() {
				if p := c.traceOwner(rec.TraceID()); p != nil {
					addInvocationID(rec.Attributes(), p)
				} else {
					c.sdk.untracedLogs = append(c.sdk.untracedLogs, rec)
				}
			}
		}
	}
}

// traceOwner finds the invocation whose X-Ray trace holds trace; nil when none does.
func (c *Converter) traceOwner(trace pcommon.TraceID) *phase {
	if trace.IsEmpty() {
		return nil
	}
	for _, q := range c.order {
		if h := q.xray(); h.HasTraceID && h.TraceID == trace {
			return q
		}
	}
	for i := range min(c.nrec, recentPhases) {
		q := c.recent[(c.nrec-1-i)%recentPhases]
		if h := q.xray(); q.kind == kindInvoke && h.HasTraceID && h.TraceID == trace {
			return q
		}
	}
	return nil
}

// windowOwner finds the invocation running at at: the latest one that started by then
// and had not ended (its platform.runtimeDone) before. nil when none was.
func (c *Converter) windowOwner(at pcommon.Timestamp) *phase {
	if at == 0 {
		return nil
	}
	t := at.AsTime()
	for i := range min(c.nrec, recentPhases) {
		q := c.recent[(c.nrec-1-i)%recentPhases]
		start := q.startAt
		if start.IsZero() {
			start = q.invokedAt
		}
		if q.kind != kindInvoke || start.IsZero() || t.Before(start) {
			continue
		}
		if q.doneAt.IsZero() || !t.After(q.doneAt) {
			return q
		}
		return nil // the latest invocation to start by then had ended
	}
	return nil
}

// addInvocationID gives an SDK item its invocation's id, unless it has one.
func addInvocationID(attrs pcommon.Map, p *phase) {
	if _, ok := attrs.Get(attrInvocationID); !ok && p.requestID != "" {
		attrs.PutStr(attrInvocationID, p.requestID)
	}
}

// xray is the phase's X-Ray header, parsed once it is known.
func (p *phase) xray() xray.Header {
	if !p.xrParsed && p.header != "" {
		p.xr, p.xrParsed = xray.Parse(p.header), true
	}
	return p.xr
}

// isSDKRoot reports whether a span with parent is the root of the invocation's own spans:
// its parent is the invocation's X-Ray Parent or, where the runtime was given the
// platform's span as parent, that span.
func (p *phase) isSDKRoot(parent pcommon.SpanID) bool {
	if parent.IsEmpty() {
		return false
	}
	if h := p.xray(); h.HasParentID && h.ParentID == parent {
		return true
	}
	id, ok := xray.ParseSpanID(p.spanHint)
	return ok && id == parent
}

// AwaitsSDK reports whether the function's SDK is expected to send the spans of
// invocation requestID and has not yet sent its root: the invocation is sampled, and the
// SDK sent the root spans of earlier invocations. The extension waits for them, within
// its flush budget, before flushing the invocation.
func (c *Converter) AwaitsSDK(requestID string) bool {
	if !c.instrumented {
		return false
	}
	p, ok := c.open[requestID]
	if !ok {
		return false
	}
	h := p.xray()
	return h.HasTraceID && h.Sampled == xray.SamplingYes && !p.sdkRoot
}

// SDKLate notes that an awaited SDK root did not come in time: the extension stops
// expecting one until the SDK sends one again, so that an invocation it does not trace
// costs the next ones no wait.
func (c *Converter) SDKLate() { c.instrumented = false }

// takeSDK appends what the SDK sent to d, under resources completed with what the
// extension knows of the function, and puts SDK roots under their invocation's span.
func (c *Converter) takeSDK(d *Data) {
	for _, s := range c.sdk.untracedSpans {
		if p := c.windowOwner(s.StartTimestamp()); p != nil {
			addInvocationID(s.Attributes(), p)
		}
	}
	for _, rec := range c.sdk.untracedLogs {
		at := rec.Timestamp()
		if at == 0 {
			at = rec.ObservedTimestamp()
		}
		p := c.windowOwner(at)
		if p == nil {
			continue
		}
		if rec.TraceID().IsEmpty() {
			_, hasID := rec.Attributes().Get(attrInvocationID)
			logFix{rec: rec, phase: p, addID: !hasID}.apply(c.ids)
		} else {
			addInvocationID(rec.Attributes(), p)
		}
	}
	clear(c.sdk.untracedSpans)
	clear(c.sdk.untracedLogs)
	c.sdk.untracedSpans, c.sdk.untracedLogs = c.sdk.untracedSpans[:0], c.sdk.untracedLogs[:0]
	for _, f := range c.sdk.parents {
		p := f.phase
		if !p.platform {
			continue // no platform span to be the parent of
		}
		p.resolve(c.ids)
		f.span.SetParentSpanID(p.spanID)
	}
	if c.sdk.traces.ResourceSpans().Len()+c.sdk.logs.ResourceLogs().Len()+c.sdk.metrics.ResourceMetrics().Len() == 0 {
		c.sdk.parents = c.sdk.parents[:0]
		return
	}
	detected := pcommon.NewMap()
	c.res.fill(detected, c.learned)
	for _, rs := range c.sdk.traces.ResourceSpans().All() {
		mergeResource(rs.Resource().Attributes(), detected)
	}
	for _, rl := range c.sdk.logs.ResourceLogs().All() {
		mergeResource(rl.Resource().Attributes(), detected)
	}
	for _, rm := range c.sdk.metrics.ResourceMetrics().All() {
		mergeResource(rm.Resource().Attributes(), detected)
	}
	c.sdk.traces.ResourceSpans().MoveAndAppendTo(d.Traces.ResourceSpans())
	c.sdk.logs.ResourceLogs().MoveAndAppendTo(d.Logs.ResourceLogs())
	c.sdk.metrics.ResourceMetrics().MoveAndAppendTo(d.Metrics.ResourceMetrics())
	clear(c.sdk.parents)
	c.sdk.parents = c.sdk.parents[:0]
}

// mergeResource fills an SDK resource with the detected attributes it lacks. The SDK's
// own values stand, except a service.name the SDK made up (unknown_service…) for want of
// one; its telemetry.sdk.* describe the SDK, not the extension, and are left alone.
func mergeResource(sdk, detected pcommon.Map) {
	for k, v := range detected.All() {
		if strings.HasPrefix(k, "telemetry.sdk.") {
			continue
		}
		if cur, ok := sdk.Get(k); ok && (k != string(semconv.ServiceNameKey) || !strings.HasPrefix(cur.AsString(), "unknown_service")) {
			continue
		}
		v.CopyTo(sdk.PutEmpty(k))
	}
}
