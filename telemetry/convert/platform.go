package convert

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// platformLog converts a platform event, or an event of a type this package does not
// know, into a log record: a line like the one CloudWatch shows, the event's fields as
// attributes, and the severity Lambda's system log level gives it.
func (c *Converter) platformLog(e *telemetry.Event, owner *phase) {
	rec := c.logs.AppendEmpty()
	ts := stamp(e.Time)
	rec.SetObservedTimestamp(ts)
	rec.SetTimestamp(ts)
	attrs := rec.Attributes()
	attrs.PutStr(attrEventType, string(e.Type))
	recordAttrs(attrs, e.Record)
	if raw, ok := e.Record.(*telemetry.Raw); ok {
		rec.Body().SetStr(strings.ToValidUTF8(string(raw.JSON), "\uFFFD"))
	} else {
		rec.Body().SetStr(platformText(e.Record))
		if sev, text := platformSeverity(e.Record); sev != 0 {
			rec.SetSeverityNumber(sev)
			rec.SetSeverityText(text)
		}
	}
	byTime := false
	if owner == nil {
		owner, byTime = c.owner("", e.Time)
	}
	if owner != nil {
		c.fixes = append(c.fixes, logFix{rec: rec, phase: owner, addID: byTime})
	}
}

// platformSeverity is the system log level Lambda assigns to a platform event.
func platformSeverity(r telemetry.Record) (plog.SeverityNumber, string) {
	const (
		debug = plog.SeverityNumberDebug
		info  = plog.SeverityNumberInfo
		warn  = plog.SeverityNumberWarn
	)
	level := info
	ok := func(st telemetry.Status, quiet plog.SeverityNumber) plog.SeverityNumber {
		if st != telemetry.StatusSuccess {
			return warn
		}
		return quiet
	}
	switch r := r.(type) {
	case *telemetry.InitStart:
		if r.RuntimeVersion == "" {
			level = debug
		}
	case *telemetry.RestoreStart:
		if r.RuntimeVersion == "" {
			level = debug
		}
	case *telemetry.InitRuntimeDone:
		level = ok(r.Status, debug)
	case *telemetry.RestoreRuntimeDone:
		level = ok(r.Status, debug)
	case *telemetry.RuntimeDone:
		level = ok(r.Status, debug)
	case *telemetry.InitReport:
		quiet := debug
		if r.InitializationType == telemetry.InitSnapStart {
			quiet = info
		}
		level = ok(r.Status, quiet)
	case *telemetry.RestoreReport:
		level = ok(r.Status, info)
	case *telemetry.Report:
		level = ok(r.Status, info)
	case *telemetry.Extension:
		if r.ErrorType != "" || strings.EqualFold(r.State, "failed") {
			level = warn
		}
	case *telemetry.LogsDropped:
		level = warn
	}
	return level, severityNames[level]
}

var severityNames = map[plog.SeverityNumber]string{
	plog.SeverityNumberDebug: "DEBUG",
	plog.SeverityNumberInfo:  "INFO",
	plog.SeverityNumberWarn:  "WARN",
}

// platformText writes a platform event the way CloudWatch Logs shows it in the Text format
// ("REPORT RequestId: … Duration: 2.34 ms …"), so the lines read as users know them.
func platformText(r telemetry.Record) string {
	var b lineBuilder
	switch r := r.(type) {
	case *telemetry.InitStart:
		b.runtime("INIT_START", r.RuntimeVersion, r.RuntimeVersionArn)
	case *telemetry.InitRuntimeDone:
		b.done("INIT_RUNTIME_DONE", r.Status, r.ErrorType)
	case *telemetry.InitReport:
		b.word("INIT_REPORT")
		b.ms("Init Duration", r.Metrics.DurationMs)
		b.field("Phase", string(r.Phase))
		b.status(r.Status, r.ErrorType)
	case *telemetry.RestoreStart:
		b.runtime("RESTORE_START", r.RuntimeVersion, r.RuntimeVersionArn)
	case *telemetry.RestoreRuntimeDone:
		b.done("RESTORE_RUNTIME_DONE", r.Status, r.ErrorType)
	case *telemetry.RestoreReport:
		b.word("RESTORE_REPORT")
		if r.Metrics != nil {
			b.ms("Restore Duration", r.Metrics.DurationMs)
		}
		b.status(r.Status, r.ErrorType)
	case *telemetry.Start:
		b.word("START")
		b.field("RequestId", r.RequestID)
		b.field("Version", r.Version)
	case *telemetry.RuntimeDone:
		b.word("RUNTIME_DONE")
		b.field("RequestId", r.RequestID)
		if r.Metrics != nil {
			b.ms("Duration", r.Metrics.DurationMs)
		}
		b.status(r.Status, r.ErrorType)
	case *telemetry.Report:
		m := r.Metrics
		b.word("REPORT")
		b.field("RequestId", r.RequestID)
		b.ms("Duration", m.DurationMs)
		b.unit("Billed Duration", int64(m.BilledDurationMs), "ms")
		b.unit("Memory Size", int64(m.MemorySizeMB), "MB")
		b.unit("Max Memory Used", int64(m.MaxMemoryUsedMB), "MB")
		if m.InitDurationMs > 0 {
			b.ms("Init Duration", m.InitDurationMs)
		}
		if m.RestoreDurationMs > 0 {
			b.ms("Restore Duration", m.RestoreDurationMs)
		}
		if r.Status != telemetry.StatusSuccess {
			b.status(r.Status, r.ErrorType)
		}
	case *telemetry.Extension:
		b.word("EXTENSION")
		b.field("Name", r.Name)
		b.field("State", r.State)
		b.list("Events", r.Events)
		b.field("Error Type", r.ErrorType)
	case *telemetry.TelemetrySubscription:
		b.word("TELEMETRY")
		b.field("Name", r.Name)
		b.field("State", r.State)
		b.list("Types", r.Types)
	case *telemetry.LogsDropped:
		b.word("LOGS_DROPPED")
		b.unit("Dropped Records", int64(r.DroppedRecords), "")
		b.unit("Dropped Bytes", int64(r.DroppedBytes), "")
		b.field("Reason", r.Reason)
	}
	return b.String()
}

// lineBuilder writes "WORD\tName: value\tName: value".
type lineBuilder struct{ strings.Builder }

func (b *lineBuilder) word(w string) { b.WriteString(w) }

func (b *lineBuilder) field(name, v string) {
	if v == "" {
		return
	}
	b.WriteByte('\t')
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(v)
}

func (b *lineBuilder) ms(name string, v float64) {
	b.field(name, strconv.FormatFloat(v, 'f', 2, 64)+" ms")
}

func (b *lineBuilder) unit(name string, v int64, unit string) {
	s := strconv.FormatInt(v, 10)
	if unit != "" {
		s += " " + unit
	}
	b.field(name, s)
}

func (b *lineBuilder) list(name string, vs []string) {
	b.field(name, "["+strings.Join(vs, ", ")+"]")
}

func (b *lineBuilder) status(st telemetry.Status, errType string) {
	b.field("Status", string(st))
	b.field("Error Type", errType)
}

// runtime writes a Start line: the runtime it loads.
func (b *lineBuilder) runtime(word, version, arn string) {
	b.word(word)
	b.field("Runtime Version", version)
	b.field("Runtime Version ARN", arn)
}

// done writes a RuntimeDone line of an init or restore phase.
func (b *lineBuilder) done(word string, st telemetry.Status, errType string) {
	b.word(word)
	b.status(st, errType)
}
