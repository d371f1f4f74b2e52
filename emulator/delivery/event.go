// Package delivery holds the emulator's Telemetry API and Logs API subscriptions and
// delivers the platform, function and extension events of an execution environment to
// them: validated subscriptions, a buffer per subscriber with its maxItems, maxBytes and
// timeoutMs, HTTP (a JSON array per POST) or TCP (NDJSON) delivery, retries with backoff,
// and platform.logsDropped when a subscriber falls behind.
package delivery

import (
	"encoding/json"
	"strings"
	"time"
)

// Event types. The Telemetry API names are used throughout; the Logs API's own events
// (platform.end, platform.fault, platform.logsSubscription) exist only for its subscribers.
const (
	TypeInitStart             = "platform.initStart"
	TypeInitRuntimeDone       = "platform.initRuntimeDone"
	TypeInitReport            = "platform.initReport"
	TypeStart                 = "platform.start"
	TypeRuntimeDone           = "platform.runtimeDone"
	TypeReport                = "platform.report"
	TypeExtension             = "platform.extension"
	TypeTelemetrySubscription = "platform.telemetrySubscription"
	TypeLogsDropped           = "platform.logsDropped"
	TypeFunction              = "function"
	TypeExtensionLog          = "extension"
	// Logs API only.
	TypeEnd               = "platform.end"
	TypeFault             = "platform.fault"
	TypeLogsSubscription  = "platform.logsSubscription"
	logsDroppedReasonText = "Some logs were dropped because the downstream consumer is slower than the logs production rate"
)

// Event is one event of the stream, as the platform generated it.
type Event struct {
	Time time.Time
	Type string
	// Record is the event's record, encoded with encoding/json; a function or extension
	// line is a Line.
	Record any
}

// Line is the record of a function or extension log line.
type Line struct {
	// Text is the line as written.
	Text string
	// Object is the line as a JSON object, set when the function's log format is JSON and
	// the line is an object. Subscribers to the 2022-12-13 Telemetry schema receive it;
	// older schemas and the Logs API receive Text.
	Object json.RawMessage
}

// MarshalJSON encodes the record as subscribers to the newest schema receive it.
func (l Line) MarshalJSON() ([]byte, error) {
	if l.Object != nil {
		return l.Object, nil
	}
	return json.Marshal(l.Text)
}

// TimeFormat is the platform's timestamp layout: UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

type envelope struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record any    `json:"record"`
}

// Encode returns the event as one JSON object, with the record as the newest schema has it.
func (e Event) Encode() []byte {
	b, err := json.Marshal(envelope{Time: e.Time.UTC().Format(TimeFormat), Type: e.Type, Record: e.Record})
	if err != nil {
		// Records are the package's own types and strings; a failure is a bug worth seeing
		// in the stream rather than a silent gap.
		b, _ = json.Marshal(envelope{Time: e.Time.UTC().Format(TimeFormat), Type: e.Type, Record: "unencodable record: " + err.Error()})
	}
	return b
}

// encodeText is Encode with a line's record always a string.
func (e Event) encodeText() []byte {
	if l, ok := e.Record.(Line); ok && l.Object != nil {
		e.Record = Line{Text: l.Text}
	}
	return e.Encode()
}

// Category is the stream an event belongs to: "platform", "function" or "extension".
func Category(typ string) string {
	if strings.HasPrefix(typ, "platform.") {
		return "platform"
	}
	return typ
}

// IsLog reports whether events of this type are log lines, the only events dropped when a
// subscriber falls behind.
func IsLog(typ string) bool { return typ == TypeFunction || typ == TypeExtensionLog }

// LogsOnly reports whether the type exists only in the Logs API.
func LogsOnly(typ string) bool {
	return typ == TypeEnd || typ == TypeFault || typ == TypeLogsSubscription
}

// Platform records. Optional fields are omitted when empty, as the platform omits them.

// InitStart is the record of platform.initStart.
type InitStart struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	RuntimeVersion     string `json:"runtimeVersion,omitempty"`
	RuntimeVersionArn  string `json:"runtimeVersionArn,omitempty"`
	FunctionName       string `json:"functionName"`
	FunctionVersion    string `json:"functionVersion"`
	InstanceID         string `json:"instanceId,omitempty"`
	InstanceMaxMemory  int    `json:"instanceMaxMemory,omitempty"`
}

// InitRuntimeDone is the record of platform.initRuntimeDone.
type InitRuntimeDone struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	Status             string `json:"status"`
	ErrorType          string `json:"errorType,omitempty"`
}

// InitReport is the record of platform.initReport.
type InitReport struct {
	InitializationType string            `json:"initializationType"`
	Phase              string            `json:"phase"`
	Status             string            `json:"status"`
	ErrorType          string            `json:"errorType,omitempty"`
	Metrics            InitReportMetrics `json:"metrics"`
}

// InitReportMetrics are an initReport's figures.
type InitReportMetrics struct {
	DurationMs float64 `json:"durationMs"`
}

// Tracing is a record's TraceContext.
type Tracing struct {
	SpanID string `json:"spanId,omitempty"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

// Start is the record of platform.start (and, without version and tracing, of the Logs
// API's platform.end).
type Start struct {
	RequestID string   `json:"requestId"`
	Version   string   `json:"version,omitempty"`
	Tracing   *Tracing `json:"tracing,omitempty"`
}

// Span is one timed part of a phase.
type Span struct {
	Name       string  `json:"name"`
	Start      string  `json:"start"`
	DurationMs float64 `json:"durationMs"`
}

// RuntimeDone is the record of platform.runtimeDone.
type RuntimeDone struct {
	RequestID string              `json:"requestId"`
	Status    string              `json:"status"`
	ErrorType string              `json:"errorType,omitempty"`
	Metrics   *RuntimeDoneMetrics `json:"metrics,omitempty"`
	Spans     []Span              `json:"spans,omitempty"`
	Tracing   *Tracing            `json:"tracing,omitempty"`
}

// RuntimeDoneMetrics are a runtimeDone's figures.
type RuntimeDoneMetrics struct {
	DurationMs    float64 `json:"durationMs"`
	ProducedBytes int64   `json:"producedBytes,omitempty"`
}

// Report is the record of platform.report.
type Report struct {
	RequestID string        `json:"requestId"`
	Status    string        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
	Metrics   ReportMetrics `json:"metrics"`
	Tracing   *Tracing      `json:"tracing,omitempty"`
}

// ReportMetrics are a report's figures.
type ReportMetrics struct {
	DurationMs       float64  `json:"durationMs"`
	BilledDurationMs int64    `json:"billedDurationMs"`
	MemorySizeMB     int      `json:"memorySizeMB"`
	MaxMemoryUsedMB  int      `json:"maxMemoryUsedMB"`
	InitDurationMs   *float64 `json:"initDurationMs,omitempty"`
}

// ExtensionState is the record of platform.extension.
type ExtensionState struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Events    []string `json:"events"`
	ErrorType string   `json:"errorType,omitempty"`
}

// Subscription is the record of platform.telemetrySubscription and platform.logsSubscription.
type Subscription struct {
	Name  string   `json:"name"`
	State string   `json:"state"`
	Types []string `json:"types"`
}

// LogsDropped is the record of platform.logsDropped.
type LogsDropped struct {
	Reason         string `json:"reason"`
	DroppedRecords int64  `json:"droppedRecords"`
	DroppedBytes   int64  `json:"droppedBytes"`
}

// Ms is a duration in milliseconds, rounded to microseconds as the platform's figures are.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
