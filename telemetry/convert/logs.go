package convert

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// logLine converts a function or extension log line. A line in the JSON log format, or a
// text line that is a JSON object (a structured logger writing to stdout under the Text
// format), has its message as the body and its other keys as attributes.
func (c *Converter) logLine(e *telemetry.Event, l *telemetry.Log) {
	rec := c.logs.AppendEmpty()
	ts := stamp(e.Time)
	rec.SetObservedTimestamp(ts)
	rec.SetTimestamp(ts)
	rec.Attributes().PutStr(attrEventType, string(e.Type))
	var requestID string
	if l.IsJSON() {
		requestID = jsonLine(rec, l.Object)
	} else {
		requestID = textLine(rec, l.Text)
	}
	if p, byTime := c.owner(requestID, e.Time); p != nil {
		c.fixes = append(c.fixes, logFix{rec: rec, phase: p, addID: byTime})
	}
}

// textLine fills rec from a line in the Text log format and returns its request id.
func textLine(rec plog.LogRecord, s string) string {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if t := strings.TrimSpace(s); len(t) > 1 && t[0] == '{' && t[len(t)-1] == '}' {
		if id, ok := jsonObjectLine(rec, []byte(t)); ok {
			return id
		}
	}
	rec.Body().SetStr(s)
	tl := parseTextLine(s)
	if tl.severity != 0 {
		rec.SetSeverityNumber(tl.severity)
		rec.SetSeverityText(tl.level)
	}
	if tl.requestID != "" {
		rec.Attributes().PutStr(attrInvocationID, tl.requestID)
	}
	return tl.requestID
}

// jsonLine fills rec from a line in the JSON log format and returns its request id. An
// object that cannot be read is kept whole as the body.
func jsonLine(rec plog.LogRecord, obj []byte) string {
	if id, ok := jsonObjectLine(rec, obj); ok {
		return id
	}
	rec.Body().SetStr(strings.ToValidUTF8(string(obj), "\uFFFD"))
	return ""
}

// Which key a log object's body or timestamp came from: the platform's own names win over
// the ones structured loggers use.
const (
	fromNone = iota
	fromAlias
	fromCanonical
)

// jsonObjectLine maps a log object: "message" (or "msg") is the body; "level" (or
// "severity") the severity; "timestamp" (or "time") the time; "requestId" (or Java's
// "AWSrequestId") the invocation; every other key an attribute, keeping its JSON type. It
// reports false, leaving rec's body and attributes as they were, when obj is not an object.
func jsonObjectLine(rec plog.LogRecord, obj []byte) (requestID string, ok bool) {
	attrs := rec.Attributes()
	kept := attrs.Len()
	body := rec.Body()
	bodyFrom, timeFrom := fromNone, fromNone
	var sevText string
	var sev plog.SeverityNumber
	var when time.Time
	r := jsonReader{b: obj}
	err := r.members(func(key string) error {
		switch {
		case strings.EqualFold(key, "message"), strings.EqualFold(key, "msg") && bodyFrom != fromCanonical:
			if bodyFrom == fromAlias {
				body.CopyTo(attrs.PutEmpty("msg"))
			}
			bodyFrom = fromAlias
			if strings.EqualFold(key, "message") {
				bodyFrom = fromCanonical
			}
			return r.value(body, 1)
		case strings.EqualFold(key, "level"), strings.EqualFold(key, "severity"):
			return r.level(&sevText, &sev, attrs, key)
		case strings.EqualFold(key, "timestamp"), strings.EqualFold(key, "time") && timeFrom != fromCanonical:
			v := attrs.PutEmpty(key)
			if err := r.value(v, 1); err != nil {
				return err
			}
			if t, ok := valueTime(v); ok {
				when, timeFrom = t, fromAlias
				if strings.EqualFold(key, "timestamp") {
					timeFrom = fromCanonical
				}
				attrs.Remove(key)
			}
			return nil
		case strings.EqualFold(key, "requestId"), strings.EqualFold(key, "AWSrequestId"):
			if r.peek() == '"' {
				s, err := r.str()
				requestID = s
				attrs.PutStr(attrInvocationID, s)
				return err
			}
			return r.value(attrs.PutEmpty(key), 1)
		}
		return r.value(attrs.PutEmpty(key), 1)
	})
	if err != nil || !r.eof() {
		// Undo: drop the attributes added after the first kept ones.
		attrs.RemoveIf(func(string, pcommon.Value) bool {
			kept--
			return kept < 0
		})
		body.SetStr("")
		return "", false
	}
	if bodyFrom == fromNone {
		body.SetStr(strings.ToValidUTF8(string(obj), "\uFFFD"))
	}
	if sevText != "" {
		rec.SetSeverityText(sevText)
		rec.SetSeverityNumber(sev)
	}
	if !when.IsZero() {
		rec.SetTimestamp(stamp(when))
	}
	return requestID, true
}

// level reads a level value: a name, or a number as pino writes. Anything else, or a name
// it does not know, is kept as the attribute key, so that nothing is lost.
func (r *jsonReader) level(text *string, sev *plog.SeverityNumber, attrs pcommon.Map, key string) error {
	switch c := r.peek(); {
	case c == '"':
		s, err := r.str()
		if n, ok := levelSeverity(s, false); ok {
			*text, *sev = s, n
		} else {
			attrs.PutStr(key, s)
		}
		return err
	case c == '-' || c >= '0' && c <= '9':
		num := r.number()
		if n, err := strconv.ParseInt(string(num), 10, 64); err == nil {
			if s, name, ok := numericSeverity(n); ok {
				*text, *sev = name, s
				return nil
			}
		}
		return setNumber(attrs.PutEmpty(key), num)
	}
	return r.value(attrs.PutEmpty(key), 1)
}

// valueTime reads a timestamp: an RFC 3339 string, or a number of seconds, milliseconds
// (pino), microseconds or nanoseconds since the epoch, told apart by magnitude.
func valueTime(v pcommon.Value) (time.Time, bool) {
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return telemetry.ParseTime(v.Str())
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	case pcommon.ValueTypeDouble:
		f = v.Double()
	default:
		return time.Time{}, false
	}
	var unit float64 // nanoseconds per unit of the number
	switch {
	case f <= 0 || f >= 1e19:
		return time.Time{}, false
	case f < 1e11:
		unit = 1e9
	case f < 1e14:
		unit = 1e6
	case f < 1e17:
		unit = 1e3
	default:
		unit = 1
	}
	if v.Type() == pcommon.ValueTypeInt {
		return time.Unix(0, v.Int()*int64(unit)).UTC(), true
	}
	return time.Unix(0, int64(f*unit)).UTC(), true
}
