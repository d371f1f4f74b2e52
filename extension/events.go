package extension

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
)

// EventType is an Extensions API event an extension registers for and receives from
// event/next.
type EventType string

const (
	// Invoke is sent at the start of each invocation, to extensions registered for it.
	Invoke EventType = "INVOKE"
	// Shutdown is sent once before the execution environment is removed, to external
	// extensions registered for it.
	Shutdown EventType = "SHUTDOWN"
)

// ShutdownReason says why the environment is shutting down. Decoding upper-cases the wire
// value, because the reference emulator sends the reasons in lower case.
type ShutdownReason string

const (
	// Spindown is a normal shutdown of an idle or recycled environment.
	Spindown ShutdownReason = "SPINDOWN"
	// Timeout means the invocation ran past the function's timeout.
	Timeout ShutdownReason = "TIMEOUT"
	// Failure is an error condition such as running out of memory or a crash.
	Failure ShutdownReason = "FAILURE"
)

// Tracing is the trace context Lambda passes with an invocation.
type Tracing struct {
	// Type is always "X-Amzn-Trace-Id".
	Type string `json:"type"`
	// Value is the X-Ray trace header, e.g. "Root=1-…;Parent=…;Sampled=1".
	Value string `json:"value"`
}

// InvokeEvent is the metadata of one invocation. It never carries the function's payload.
type InvokeEvent struct {
	// EventID is the Lambda-Extension-Event-Identifier of the event/next answer.
	EventID string `json:"-"`
	// RequestID is the invocation's request id, the one the runtime sees.
	RequestID string `json:"requestId"`
	// DeadlineMs is when the invocation times out, in Unix epoch milliseconds.
	DeadlineMs EpochMillis `json:"deadlineMs"`
	// InvokedFunctionArn is the ARN the caller used, with any version or alias qualifier.
	InvokedFunctionArn string `json:"invokedFunctionArn"`
	// Tracing is nil when the invocation carries no trace header.
	Tracing *Tracing `json:"tracing,omitempty"`
}

// ShutdownEvent tells an external extension the environment is going away.
type ShutdownEvent struct {
	// EventID is the Lambda-Extension-Event-Identifier of the event/next answer.
	EventID string `json:"-"`
	// Reason is upper case whatever case the wire used.
	Reason ShutdownReason `json:"shutdownReason"`
	// DeadlineMs is the absolute end of the shutdown window, in Unix epoch milliseconds.
	DeadlineMs EpochMillis `json:"deadlineMs"`
}

// Event is one answer of event/next: exactly one of Invoke and Shutdown is set for the
// known types; both are nil for a type this package does not know.
type Event struct {
	Type     EventType
	Invoke   *InvokeEvent
	Shutdown *ShutdownEvent
}

// UnmarshalJSON upper-cases the reason so callers compare against the constants directly.
func (r *ShutdownReason) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("shutdownReason: %w", err)
	}
	*r = ShutdownReason(strings.ToUpper(s))
	return nil
}

// EpochMillis is a Unix time in milliseconds. It decodes from a JSON number, integral or
// not, or from a string holding one, since the guide prints both forms.
type EpochMillis int64

// UnmarshalJSON accepts 1700000000000, 1700000000000.0 and "1700000000000"; null leaves zero.
func (m *EpochMillis) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	n, ok := jsontext.ParseInt(string(bytes.Trim(b, `"`)))
	if !ok {
		return fmt.Errorf("deadlineMs %s is not epoch milliseconds", b)
	}
	*m = EpochMillis(n)
	return nil
}

// Time returns m as a time.Time; zero stays the zero time.
func (m EpochMillis) Time() time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m))
}

// errMalformedEvent marks an event/next answer whose body could not be read.
var errMalformedEvent = errors.New("malformed event")

// decodeEvent turns an event/next body into an Event. When a known event has fields of the
// wrong shape it returns the event as far as it was read together with the error, because
// an INVOKE or a SHUTDOWN must still be acted on.
func decodeEvent(eventID string, body []byte) (Event, error) {
	var head struct {
		EventType EventType `json:"eventType"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return Event{}, fmt.Errorf("%w: %w", errMalformedEvent, err)
	}
	ev := Event{Type: head.EventType}
	var err error
	switch head.EventType {
	case Invoke:
		ev.Invoke = &InvokeEvent{EventID: eventID}
		err = json.Unmarshal(body, ev.Invoke)
	case Shutdown:
		ev.Shutdown = &ShutdownEvent{EventID: eventID}
		err = json.Unmarshal(body, ev.Shutdown)
	}
	if err != nil {
		return ev, fmt.Errorf("%w: %s event: %w", errMalformedEvent, head.EventType, err)
	}
	return ev, nil
}
