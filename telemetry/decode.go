package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"
)

var intType = reflect.TypeFor[int64]()

// wireEvent is the envelope every element of a batch shares.
type wireEvent struct {
	Time   string          `json:"time"`
	Type   EventType       `json:"type"`
	Record json.RawMessage `json:"record"`
}

// DecodeBatch decodes a Telemetry API POST body, a JSON array of events, appending the
// events to dst. It keeps going past an element whose envelope or record has the wrong
// shape (that element becomes a *Raw record), but a syntax error ends the batch: it then
// returns the events read before the fault together with an error saying where it was.
// The returned events own their memory; body may be reused afterwards.
func DecodeBatch(dst []Event, body []byte) ([]Event, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return dst, fmt.Errorf("batch is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return dst, errors.New("batch is not a JSON array")
	}
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		var w wireEvent
		err := dec.Decode(&w)
		end := dec.InputOffset()
		var typeErr *json.UnmarshalTypeError
		switch {
		case err == nil:
			dst = append(dst, Event{
				Time:   parseTimeString(w.Time),
				Type:   w.Type,
				Record: decodeRecord(w.Type, w.Record),
				Size:   int(end - start),
			})
		case errors.As(err, &typeErr):
			// The element is complete JSON but not an envelope: keep it whole.
			raw := bytes.TrimLeft(body[start:end], " \t\r\n,")
			dst = append(dst, Event{
				Time:   parseTimeString(w.Time),
				Type:   w.Type,
				Record: &Raw{JSON: bytes.Clone(raw), Err: "event envelope: " + err.Error()},
				Size:   int(end - start),
			})
		default:
			return dst, fmt.Errorf("event %d at byte %d: %w", i, start, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return dst, fmt.Errorf("end of batch: %w", err)
	}
	return dst, nil
}

// decodeRecord types raw by t; it never fails, falling back to *Raw.
func decodeRecord(t EventType, raw json.RawMessage) Record {
	var rec Record
	switch t {
	case TypeFunction, TypeExtensionLog:
		return decodeLog(raw)
	case TypeInitStart:
		rec = new(InitStart)
	case TypeInitRuntimeDone:
		rec = new(InitRuntimeDone)
	case TypeInitReport:
		rec = new(InitReport)
	case TypeStart:
		rec = new(Start)
	case TypeRuntimeDone:
		rec = new(RuntimeDone)
	case TypeReport:
		rec = new(Report)
	case TypeRestoreStart:
		rec = new(RestoreStart)
	case TypeRestoreRuntimeDone:
		rec = new(RestoreRuntimeDone)
	case TypeRestoreReport:
		rec = new(RestoreReport)
	case TypeExtension:
		rec = new(Extension)
	case TypeTelemetrySubscription:
		rec = new(TelemetrySubscription)
	case TypeLogsDropped:
		rec = new(LogsDropped)
	default:
		return &Raw{JSON: raw}
	}
	if len(raw) == 0 {
		return rec
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		return &Raw{JSON: raw, Err: fmt.Sprintf("%s record: %v", t, err)}
	}
	return rec
}

// decodeLog reads a function or extension record: a string in the Text log format, an
// object in the JSON one. Anything else is kept as its JSON text, since it is still a line
// the code wrote.
func decodeLog(raw json.RawMessage) Record {
	if len(raw) == 0 {
		return &Log{}
	}
	switch raw[0] {
	case '"':
		return &Log{Text: jsonString(raw)}
	case '{':
		var w struct {
			Timestamp    json.RawMessage `json:"timestamp"`
			Level        json.RawMessage `json:"level"`
			RequestID    json.RawMessage `json:"requestId"`
			AWSRequestID json.RawMessage `json:"AWSrequestId"`
			Message      json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return &Raw{JSON: raw, Err: "log record: " + err.Error()}
		}
		l := &Log{Object: raw, Level: jsonString(w.Level), RequestID: jsonString(w.RequestID), Message: jsonString(w.Message)}
		if l.RequestID == "" {
			l.RequestID = jsonString(w.AWSRequestID)
		}
		l.Timestamp, _ = parseTimeJSON(w.Timestamp)
		return l
	default:
		return &Log{Text: string(raw)}
	}
}

// jsonString returns the string raw holds, or raw's JSON text when it is another kind of
// value. Most log lines need no unescaping, so they skip the reflective decoder.
func jsonString(raw json.RawMessage) string {
	if len(raw) < 2 || raw[0] != '"' {
		return string(raw)
	}
	inner := raw[1 : len(raw)-1]
	if plainJSONString(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw)
	}
	return s
}

// plainJSONString reports whether b, the inside of a JSON string, reads as itself: no
// escapes, no control characters, valid UTF-8.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c < 0x20 || c == '"' {
			return false
		}
	}
	return utf8.Valid(b)
}

// parseTimeJSON reads a JSON string value holding a timestamp.
func parseTimeJSON(raw json.RawMessage) (time.Time, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return time.Time{}, false
	}
	return parseTime(string(raw[1 : len(raw)-1]))
}

func parseTimeString(s string) time.Time {
	t, _ := parseTime(s)
	return t
}

// parseTime reads an ISO 8601 timestamp with or without fractional seconds, and also the
// "12:01:23:521Z" form (a colon before the milliseconds) that the guide's examples use.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if len(s) > 20 && s[19] == ':' {
		if t, err := time.Parse(time.RFC3339Nano, s[:19]+"."+s[20:]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
