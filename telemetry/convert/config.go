package convert

import (
	"fmt"
	"strings"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// PhaseSpans says how the timed parts of a phase (record.spans[]: responseLatency,
// responseDuration, runtimeOverhead, …) are shown.
type PhaseSpans int

const (
	// SpanEvents makes each part an event of the phase span.
	SpanEvents PhaseSpans = iota
	// ChildSpans makes each part a child span of the phase span.
	ChildSpans
)

// Temporality is the aggregation temporality of the metrics.
type Temporality int

const (
	// Cumulative reports totals since the extension started, so a lost export loses
	// nothing: the next one carries the totals.
	Cumulative Temporality = iota
	// Delta reports what happened since the previous export.
	Delta
)

// PlatformLogs is the set of platform event types that also become log records.
type PlatformLogs uint16

// platformTypes are the types PlatformLogs can hold, one bit each, in this order.
var platformTypes = [...]telemetry.EventType{
	telemetry.TypeInitStart, telemetry.TypeInitRuntimeDone, telemetry.TypeInitReport,
	telemetry.TypeStart, telemetry.TypeRuntimeDone, telemetry.TypeReport,
	telemetry.TypeRestoreStart, telemetry.TypeRestoreRuntimeDone, telemetry.TypeRestoreReport,
	telemetry.TypeExtension, telemetry.TypeTelemetrySubscription, telemetry.TypeLogsDropped,
}

// AllPlatformLogs holds every platform event type.
const AllPlatformLogs PlatformLogs = 1<<len(platformTypes) - 1

// Has reports whether events of type t become log records. Types outside the platform's
// known ones (unknown platform.* types) follow the set being non-empty: they are kept
// unless platform logs are off altogether.
func (p PlatformLogs) Has(t telemetry.EventType) bool {
	for i, pt := range platformTypes {
		if pt == t {
			return p&(1<<i) != 0
		}
	}
	return p != 0
}

// WantPlatformLogs describes the values ParsePlatformLogs accepts, for error messages.
const WantPlatformLogs = `"all", "none", or a comma-separated list of platform event types such as "start,report,logsDropped"`

// ParsePlatformLogs reads "all" (or "true"), "none" (or "false"), or a comma-separated list
// of platform event types, with or without their "platform." prefix.
func ParsePlatformLogs(s string) (PlatformLogs, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "true", "on":
		return AllPlatformLogs, nil
	case "none", "false", "off":
		return 0, nil
	}
	var p PlatformLogs
	for part := range strings.SplitSeq(s, ",") {
		name := strings.TrimPrefix(strings.TrimSpace(part), "platform.")
		i := indexPlatformType(name)
		if i < 0 {
			return 0, fmt.Errorf("unknown platform event type %q", strings.TrimSpace(part))
		}
		p |= 1 << i
	}
	return p, nil
}

func indexPlatformType(name string) int {
	for i, t := range platformTypes {
		if strings.EqualFold(string(t), "platform."+name) {
			return i
		}
	}
	return -1
}

// Triggers are the values of faas.trigger.
var Triggers = []string{"datasource", "http", "pubsub", "timer", "other"}

// Config says what the converter produces.
type Config struct {
	// PhaseSpans is how a phase's timed parts are shown.
	PhaseSpans PhaseSpans
	// PlatformLogs are the platform event types that also become log records.
	PlatformLogs PlatformLogs
	// Temporality of the metrics.
	Temporality Temporality
	// Trigger is the function's faas.trigger, one of Triggers, or empty when unknown: the
	// Telemetry API does not say what invoked the function, its owner does.
	Trigger string
}

// DefaultConfig is span events, every platform event as a log record, cumulative metrics.
func DefaultConfig() Config {
	return Config{PhaseSpans: SpanEvents, PlatformLogs: AllPlatformLogs, Temporality: Cumulative}
}
