// Package telemetry receives the Lambda Telemetry API stream: it subscribes, runs the
// listener the platform posts batches to, decodes each batch into typed events and keeps
// them in a bounded buffer until the extension flushes them.
package telemetry

import (
	"bytes"
	"encoding/json"
	"reflect"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
)

// EventType is the "type" of a Telemetry API event.
type EventType string

// The 14 event types of schema 2022-12-13.
const (
	TypeInitStart             EventType = "platform.initStart"
	TypeInitRuntimeDone       EventType = "platform.initRuntimeDone"
	TypeInitReport            EventType = "platform.initReport"
	TypeStart                 EventType = "platform.start"
	TypeRuntimeDone           EventType = "platform.runtimeDone"
	TypeReport                EventType = "platform.report"
	TypeRestoreStart          EventType = "platform.restoreStart"
	TypeRestoreRuntimeDone    EventType = "platform.restoreRuntimeDone"
	TypeRestoreReport         EventType = "platform.restoreReport"
	TypeExtension             EventType = "platform.extension"
	TypeTelemetrySubscription EventType = "platform.telemetrySubscription"
	TypeLogsDropped           EventType = "platform.logsDropped"
	TypeFunction              EventType = "function"
	TypeExtensionLog          EventType = "extension"
)

// Event is one element of a Telemetry API batch.
type Event struct {
	// Time is when the platform generated the event; zero when it was missing or unreadable.
	Time time.Time
	// Type is the event's type as sent, including types this package does not know.
	Type EventType
	// Record is the typed payload. Its dynamic type follows Type (*InitStart for
	// TypeInitStart, *Log for TypeFunction and TypeExtensionLog, …); it is *Raw for an
	// unknown type or a record that does not match its type's schema.
	Record Record
	// Size is the event's size on the wire in bytes, the unit of the buffer's bound.
	Size int
}

// Record is the payload of an Event. The implementations are the types of this package.
type Record interface{ isRecord() }

// Status is the outcome of a phase.
type Status string

// Phase outcomes. Failure and Error come with an ErrorType.
const (
	StatusSuccess Status = "success"
	StatusFailure Status = "failure"
	StatusError   Status = "error"
	StatusTimeout Status = "timeout"
)

// InitType is how the environment was initialised.
type InitType string

// Initialisation types; SnapStart is used by the guide although the schema omits it.
const (
	InitOnDemand    InitType = "on-demand"
	InitProvisioned InitType = "provisioned-concurrency"
	InitSnapStart   InitType = "snap-start"
)

// InitPhase is the phase an init ran in: "invoke" marks a suppressed init re-run together
// with an invocation after a failure.
type InitPhase string

// Init phases.
const (
	PhaseInit      InitPhase = "init"
	PhaseInvoke    InitPhase = "invoke"
	PhaseSnapStart InitPhase = "snap-start"
)

// TraceContext is the X-Ray trace context of an invocation.
type TraceContext struct {
	// SpanID is the platform's span id for the invocation, when sent.
	SpanID string `json:"spanId,omitempty"`
	// Type is always "X-Amzn-Trace-Id".
	Type string `json:"type"`
	// Value is the X-Ray trace header.
	Value string `json:"value"`
}

// Span is a timed part of a phase, such as responseLatency or runtimeOverhead.
type Span struct {
	Name string `json:"name"`
	// Start is zero when the platform's timestamp could not be read.
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"durationMs"`
}

// UnmarshalJSON reads Start leniently (see parseTime).
func (s *Span) UnmarshalJSON(b []byte) error {
	var w struct {
		Name       string          `json:"name"`
		Start      json.RawMessage `json:"start"`
		DurationMs float64         `json:"durationMs"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.Name, s.DurationMs = w.Name, w.DurationMs
	s.Start, _ = parseTimeJSON(w.Start)
	return nil
}

// Int is an integer field that also decodes from a JSON number with a fraction or from a
// string holding a number, because the platform's examples use all three forms.
type Int int64

// UnmarshalJSON accepts 256, 256.0 and "256"; null and "" leave zero.
func (n *Int) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(bytes.TrimSpace(b), `"`)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	v, ok := jsontext.ParseInt(string(b))
	if !ok {
		return &json.UnmarshalTypeError{Value: "number " + string(b), Type: reflect.TypeFor[int64]()}
	}
	*n = Int(v)
	return nil
}

// InitStart is the record of platform.initStart.
type InitStart struct {
	InitializationType InitType  `json:"initializationType"`
	Phase              InitPhase `json:"phase"`
	FunctionName       string    `json:"functionName"`
	FunctionVersion    string    `json:"functionVersion"`
	InstanceID         string    `json:"instanceId,omitempty"`
	// InstanceMaxMemory is in MB.
	InstanceMaxMemory Int    `json:"instanceMaxMemory,omitempty"`
	RuntimeVersion    string `json:"runtimeVersion,omitempty"`
	RuntimeVersionArn string `json:"runtimeVersionArn,omitempty"`
}

// InitRuntimeDone is the record of platform.initRuntimeDone.
type InitRuntimeDone struct {
	InitializationType InitType  `json:"initializationType"`
	Phase              InitPhase `json:"phase"`
	Status             Status    `json:"status"`
	ErrorType          string    `json:"errorType,omitempty"`
	Spans              []Span    `json:"spans,omitempty"`
}

// InitReportMetrics are the metrics of platform.initReport.
type InitReportMetrics struct {
	DurationMs float64 `json:"durationMs"`
	// BilledDurationMs is sent for SnapStart only.
	BilledDurationMs Int `json:"billedDurationMs,omitempty"`
}

// InitReport is the record of platform.initReport.
type InitReport struct {
	InitializationType InitType          `json:"initializationType"`
	Phase              InitPhase         `json:"phase"`
	Status             Status            `json:"status"`
	ErrorType          string            `json:"errorType,omitempty"`
	Metrics            InitReportMetrics `json:"metrics"`
	Spans              []Span            `json:"spans,omitempty"`
}

// Start is the record of platform.start.
type Start struct {
	RequestID string        `json:"requestId"`
	Version   string        `json:"version,omitempty"`
	Tracing   *TraceContext `json:"tracing,omitempty"`
}

// RuntimeDoneMetrics are the metrics of platform.runtimeDone.
type RuntimeDoneMetrics struct {
	DurationMs    float64 `json:"durationMs"`
	ProducedBytes Int     `json:"producedBytes,omitempty"`
}

// RuntimeDone is the record of platform.runtimeDone: the runtime finished the invocation.
type RuntimeDone struct {
	RequestID string              `json:"requestId"`
	Status    Status              `json:"status"`
	ErrorType string              `json:"errorType,omitempty"`
	Metrics   *RuntimeDoneMetrics `json:"metrics,omitempty"`
	Spans     []Span              `json:"spans,omitempty"`
	Tracing   *TraceContext       `json:"tracing,omitempty"`
}

// ReportMetrics are the metrics of platform.report.
type ReportMetrics struct {
	BilledDurationMs Int     `json:"billedDurationMs"`
	DurationMs       float64 `json:"durationMs"`
	// InitDurationMs is zero unless the invocation included a cold start.
	InitDurationMs  float64 `json:"initDurationMs,omitempty"`
	MaxMemoryUsedMB Int     `json:"maxMemoryUsedMB"`
	MemorySizeMB    Int     `json:"memorySizeMB"`
	// RestoreDurationMs is zero unless the invocation followed a SnapStart restore.
	RestoreDurationMs float64 `json:"restoreDurationMs,omitempty"`
}

// Report is the record of platform.report, sent after every extension has finished the
// invocation, so it usually arrives during the next invocation or at shutdown.
type Report struct {
	RequestID string        `json:"requestId"`
	Status    Status        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
	Metrics   ReportMetrics `json:"metrics"`
	Spans     []Span        `json:"spans,omitempty"`
	Tracing   *TraceContext `json:"tracing,omitempty"`
}

// RestoreStart is the record of platform.restoreStart (SnapStart).
type RestoreStart struct {
	FunctionName      string `json:"functionName"`
	FunctionVersion   string `json:"functionVersion"`
	InstanceID        string `json:"instanceId,omitempty"`
	InstanceMaxMemory Int    `json:"instanceMaxMemory,omitempty"`
	RuntimeVersion    string `json:"runtimeVersion,omitempty"`
	RuntimeVersionArn string `json:"runtimeVersionArn,omitempty"`
}

// RestoreRuntimeDone is the record of platform.restoreRuntimeDone (SnapStart).
type RestoreRuntimeDone struct {
	Status    Status `json:"status"`
	ErrorType string `json:"errorType,omitempty"`
	Spans     []Span `json:"spans,omitempty"`
}

// RestoreReportMetrics are the metrics of platform.restoreReport.
type RestoreReportMetrics struct {
	DurationMs       float64 `json:"durationMs"`
	BilledDurationMs Int     `json:"billedDurationMs,omitempty"`
}

// RestoreReport is the record of platform.restoreReport (SnapStart).
type RestoreReport struct {
	Status    Status                `json:"status"`
	ErrorType string                `json:"errorType,omitempty"`
	Metrics   *RestoreReportMetrics `json:"metrics,omitempty"`
	Spans     []Span                `json:"spans,omitempty"`
}

// Extension is the record of platform.extension: an extension registered.
type Extension struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Events    []string `json:"events"`
	ErrorType string   `json:"errorType,omitempty"`
}

// TelemetrySubscription is the record of platform.telemetrySubscription.
type TelemetrySubscription struct {
	Name  string   `json:"name"`
	State string   `json:"state"`
	Types []string `json:"types"`
}

// LogsDropped is the record of platform.logsDropped: the platform dropped log records
// because they were produced faster than they could be delivered.
type LogsDropped struct {
	DroppedBytes   Int    `json:"droppedBytes"`
	DroppedRecords Int    `json:"droppedRecords"`
	Reason         string `json:"reason"`
}

// Log is the record of a function or extension log line. A line in the Text log format
// sets only Text; a line in the JSON log format (schema 2022-12-13) sets Object and the
// fields read from it.
type Log struct {
	// Text is the line as written, for the Text log format.
	Text string
	// Object is the whole JSON log object, kept so conversion can map every key.
	Object json.RawMessage
	// Timestamp is the object's "timestamp"; zero when absent or unreadable.
	Timestamp time.Time
	// Level is the object's "level" as written.
	Level string
	// RequestID is the object's "requestId" (or "AWSrequestId", as Java writes it).
	RequestID string
	// Message is the object's "message"; a message that is not a string (Node.js logs an
	// object that way) is kept as its JSON text.
	Message string
}

// IsJSON reports whether the line came in the JSON log format.
func (l *Log) IsJSON() bool { return l.Object != nil }

// Raw is the record of an event this package cannot type: an unknown event type, or a
// record that does not match its type's schema. It is kept, never dropped.
type Raw struct {
	// JSON is the record as sent.
	JSON json.RawMessage
	// Err says why the record could not be typed; empty for an unknown type.
	Err string
}

func (*InitStart) isRecord()             {}
func (*InitRuntimeDone) isRecord()       {}
func (*InitReport) isRecord()            {}
func (*Start) isRecord()                 {}
func (*RuntimeDone) isRecord()           {}
func (*Report) isRecord()                {}
func (*RestoreStart) isRecord()          {}
func (*RestoreRuntimeDone) isRecord()    {}
func (*RestoreReport) isRecord()         {}
func (*Extension) isRecord()             {}
func (*TelemetrySubscription) isRecord() {}
func (*LogsDropped) isRecord()           {}
func (*Log) isRecord()                   {}
func (*Raw) isRecord()                   {}
