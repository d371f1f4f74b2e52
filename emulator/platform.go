package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
)

// emit generates a platform event: recorded (--events-out, the CloudWatch-style echo) and
// passed to the subscribers, in one order for all of them.
func (env *environment) emit(typ string, record any) {
	env.publish(delivery.Event{Time: time.Now(), Type: typ, Record: record})
}

func (env *environment) publish(ev delivery.Event) {
	env.emitMu.Lock()
	defer env.emitMu.Unlock()
	env.e.record(ev, env.hub.Publish(ev))
}

// logLine turns a line a process wrote into a function or extension event. With the JSON
// log format a line that is a JSON object travels as one.
func (env *environment) logLine(typ string, line []byte, at time.Time) {
	l := delivery.Line{Text: string(line)}
	if env.cfg.LogFormat == "JSON" && len(line) > 0 && line[0] == '{' && json.Valid(line) {
		l.Object = json.RawMessage(l.Text)
	}
	env.publish(delivery.Event{Time: at, Type: typ, Record: l})
}

// record writes ev, encoded as full, to --events-out and echoes it as CloudWatch would show it.
func (e *Emulator) record(ev delivery.Event, full []byte) {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	if e.cfg.EventsOut != nil && !delivery.LogsOnly(ev.Type) {
		e.cfg.EventsOut.Write(append(full, '\n'))
	}
	if line := e.cloudWatchLine(ev); line != "" {
		fmt.Fprintln(e.cfg.Log, line)
	}
}

// diag writes one of the emulator's own messages where the echo goes.
func (e *Emulator) diag(format string, args ...any) {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	fmt.Fprintf(e.cfg.Log, "lambda-emulator: "+format+"\n", args...)
}

// cloudWatchLine is the log line Lambda writes for ev, "" for none. With the JSON log
// format, platform events are written as their JSON, as Lambda does.
func (e *Emulator) cloudWatchLine(ev delivery.Event) string {
	if l, ok := ev.Record.(delivery.Line); ok {
		return l.Text
	}
	if e.cfg.LogFormat == "JSON" {
		if ev.Type == delivery.TypeFault || ev.Type == delivery.TypeLogsSubscription {
			return ""
		}
		return string(ev.Encode())
	}
	switch r := ev.Record.(type) {
	case delivery.InitStart:
		if r.RuntimeVersion != "" {
			return "INIT_START Runtime Version: " + r.RuntimeVersion
		}
		return "INIT_START"
	case delivery.InitReport:
		if r.Status == statusSuccess {
			return ""
		}
		return fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: %s\tStatus: %s%s", r.Metrics.DurationMs, r.Phase, r.Status, errorTypeSuffix(r.ErrorType))
	case delivery.Start:
		if ev.Type == delivery.TypeEnd {
			return "END RequestId: " + r.RequestID
		}
		return fmt.Sprintf("START RequestId: %s Version: %s", r.RequestID, r.Version)
	case delivery.RuntimeDone:
		if r.Status == statusTimeout {
			return fmt.Sprintf("%s %s Task timed out after %.2f seconds", ev.Time.UTC().Format(delivery.TimeFormat), r.RequestID, e.cfg.Timeout.Seconds())
		}
	case delivery.Report:
		return reportLine(r)
	case delivery.ExtensionState:
		return fmt.Sprintf("EXTENSION\tName: %s\tState: %s\tEvents: [%s]", r.Name, r.State, strings.Join(r.Events, ","))
	case delivery.Subscription:
		kind := "TELEMETRY"
		if ev.Type == delivery.TypeLogsSubscription {
			kind = "LOGS"
		}
		return fmt.Sprintf("%s\tName: %s\tState: %s\tTypes: [%s]", kind, r.Name, r.State, strings.Join(r.Types, ","))
	case delivery.LogsDropped:
		return fmt.Sprintf("lambda-emulator: %d log records (%d bytes) dropped for a subscriber that fell behind", r.DroppedRecords, r.DroppedBytes)
	}
	return ""
}

func reportLine(r delivery.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		r.RequestID, r.Metrics.DurationMs, r.Metrics.BilledDurationMs, r.Metrics.MemorySizeMB, r.Metrics.MaxMemoryUsedMB)
	if r.Metrics.InitDurationMs != nil {
		fmt.Fprintf(&b, "\tInit Duration: %.2f ms", *r.Metrics.InitDurationMs)
	}
	if r.Status != statusSuccess {
		fmt.Fprintf(&b, "\tStatus: %s%s", r.Status, errorTypeSuffix(r.ErrorType))
	}
	if t := r.Tracing; t != nil {
		root, sampled := "", false
		for _, f := range strings.Split(t.Value, ";") {
			if v, ok := strings.CutPrefix(f, "Root="); ok {
				root = v
			}
			sampled = sampled || f == "Sampled=1"
		}
		fmt.Fprintf(&b, "\nXRAY TraceId: %s\tSegmentId: %s\tSampled: %t", root, t.SpanID, sampled)
	}
	return b.String()
}

func errorTypeSuffix(t string) string {
	if t == "" {
		return ""
	}
	return "\tError Type: " + t
}
