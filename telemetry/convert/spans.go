package convert

import (
	"cmp"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// Names of the phase spans. An invocation's span is named after the function, as the
// semantic conventions ask of a FaaS server span.
const (
	initSpanName    = "init"
	restoreSpanName = "restore"
	invokeFallback  = "invoke"
)

// span appends the span of a phase that ended, and its child spans when the configuration
// asks for them.
func (c *Converter) span(out ptrace.SpanSlice, p *phase) {
	p.resolve(c.ids)
	s := out.AppendEmpty()
	switch p.kind {
	case kindInit:
		s.SetName(initSpanName)
	case kindRestore:
		s.SetName(restoreSpanName)
	default:
		s.SetName(cmp.Or(c.res.FunctionName, invokeFallback))
	}
	s.SetKind(ptrace.SpanKindServer)
	s.SetTraceID(p.traceID)
	s.SetSpanID(p.spanID)
	s.SetParentSpanID(p.parent)
	flags := uint32(0)
	if p.sampled {
		flags = 1
	}
	s.SetFlags(flags)
	start, end := p.startTime(), p.endTime()
	s.SetStartTimestamp(stamp(start))
	s.SetEndTimestamp(stamp(end))

	attrs := s.Attributes()
	for _, r := range []telemetry.Record{p.start, p.done, p.report} {
		if r != nil {
			recordAttrs(attrs, r)
		}
	}
	if p.kind == kindInvoke {
		attrs.PutStr(attrInvocationID, p.requestID)
		attrs.PutBool(attrColdstart, p.coldstart)
		if c.cfg.Trigger != "" {
			attrs.PutStr(attrTrigger, c.cfg.Trigger)
		}
		if p.arn != "" {
			attrs.PutStr(attrInvokedARN, p.arn)
		}
		if p.outOfMemory {
			attrs.PutBool(attrOutOfMemory, true)
		}
	}
	if p.status != "" {
		attrs.PutStr(attrStatus, string(p.status))
	}
	if p.incomplete != "" {
		attrs.PutBool(attrIncomplete, true)
	}
	st := s.Status()
	switch {
	case p.status == telemetry.StatusSuccess:
		st.SetCode(ptrace.StatusCodeOk)
	case p.status != "":
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage(cmp.Or(p.errorType, string(p.status)))
	case p.incomplete != "":
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage("incomplete: " + p.incomplete)
	}

	if c.cfg.PhaseSpans == ChildSpans {
		for _, part := range p.parts {
			child := out.AppendEmpty()
			child.SetName(part.Name)
			child.SetKind(ptrace.SpanKindServer)
			child.SetTraceID(p.traceID)
			child.SetSpanID(c.ids.SpanID())
			child.SetParentSpanID(p.spanID)
			child.SetFlags(flags)
			child.SetStartTimestamp(stamp(part.Start))
			child.SetEndTimestamp(stamp(part.Start.Add(msDuration(part.DurationMs))))
			st.CopyTo(child.Status())
		}
		return
	}
	for _, part := range p.parts {
		ev := s.Events().AppendEmpty()
		ev.SetName(part.Name)
		ev.SetTimestamp(stamp(part.Start))
		ev.Attributes().PutDouble(attrDurationMs, part.DurationMs)
	}
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// stamp converts t to an OTLP timestamp; the zero time, an unknown one, becomes 0 (unset).
func stamp(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}
