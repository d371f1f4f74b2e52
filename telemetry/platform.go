package telemetry

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
)

// Platform records are read by hand, because encoding/json's reflection cost some twenty
// allocations and five microseconds a record, the bulk of the work for the platform stream.
// The hand decoder reads only what it is sure encoding/json reads the same way: given anything
// else (a member of the wrong type, an escaped name) it declines, and the caller hands the
// record to encoding/json, so that odd records decode, or fail with the same message, as
// they always have.

// maxFields is the most members a struct of a platform record has (InitStart).
const maxFields = 8

// field is a member of a platform record, or of one of its parts, and where it is stored:
// ptr is a *string for every string type, so that one case reads them all.
type field struct {
	name string
	ptr  any
}

// fieldsOf lists the members of p, a platform record or one of its parts, by their JSON
// names, in an array returned by value, so that listing them allocates nothing; unused
// entries have no name.
func fieldsOf(p any) [maxFields]field {
	switch r := p.(type) {
	case *InitStart:
		return [maxFields]field{{"initializationType", (*string)(&r.InitializationType)}, {"phase", (*string)(&r.Phase)},
			{"functionName", &r.FunctionName}, {"functionVersion", &r.FunctionVersion}, {"instanceId", &r.InstanceID},
			{"instanceMaxMemory", &r.InstanceMaxMemory}, {"runtimeVersion", &r.RuntimeVersion},
			{"runtimeVersionArn", &r.RuntimeVersionArn}}
	case *InitRuntimeDone:
		return [maxFields]field{{"initializationType", (*string)(&r.InitializationType)}, {"phase", (*string)(&r.Phase)},
			{"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType}, {"spans", &r.Spans}}
	case *InitReport:
		return [maxFields]field{{"initializationType", (*string)(&r.InitializationType)}, {"phase", (*string)(&r.Phase)},
			{"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType}, {"metrics", &r.Metrics}, {"spans", &r.Spans}}
	case *InitReportMetrics:
		return [maxFields]field{{"durationMs", &r.DurationMs}, {"billedDurationMs", &r.BilledDurationMs}}
	case *Start:
		return [maxFields]field{{"requestId", &r.RequestID}, {"version", &r.Version}, {"tracing", &r.Tracing}}
	case *RuntimeDone:
		return [maxFields]field{{"requestId", &r.RequestID}, {"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType},
			{"metrics", &r.Metrics}, {"spans", &r.Spans}, {"tracing", &r.Tracing}}
	case *RuntimeDoneMetrics:
		return [maxFields]field{{"durationMs", &r.DurationMs}, {"producedBytes", &r.ProducedBytes}}
	case *Report:
		return [maxFields]field{{"requestId", &r.RequestID}, {"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType},
			{"metrics", &r.Metrics}, {"spans", &r.Spans}, {"tracing", &r.Tracing}}
	case *ReportMetrics:
		return [maxFields]field{{"billedDurationMs", &r.BilledDurationMs}, {"durationMs", &r.DurationMs},
			{"initDurationMs", &r.InitDurationMs}, {"maxMemoryUsedMB", &r.MaxMemoryUsedMB},
			{"memorySizeMB", &r.MemorySizeMB}, {"restoreDurationMs", &r.RestoreDurationMs}}
	case *RestoreStart:
		return [maxFields]field{{"functionName", &r.FunctionName}, {"functionVersion", &r.FunctionVersion},
			{"instanceId", &r.InstanceID}, {"instanceMaxMemory", &r.InstanceMaxMemory},
			{"runtimeVersion", &r.RuntimeVersion}, {"runtimeVersionArn", &r.RuntimeVersionArn}}
	case *RestoreRuntimeDone:
		return [maxFields]field{{"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType}, {"spans", &r.Spans}}
	case *RestoreReport:
		return [maxFields]field{{"status", (*string)(&r.Status)}, {"errorType", &r.ErrorType}, {"metrics", &r.Metrics},
			{"spans", &r.Spans}}
	case *RestoreReportMetrics:
		return [maxFields]field{{"durationMs", &r.DurationMs}, {"billedDurationMs", &r.BilledDurationMs}}
	case *Extension:
		return [maxFields]field{{"name", &r.Name}, {"state", &r.State}, {"events", &r.Events}, {"errorType", &r.ErrorType}}
	case *TelemetrySubscription:
		return [maxFields]field{{"name", &r.Name}, {"state", &r.State}, {"types", &r.Types}}
	case *LogsDropped:
		return [maxFields]field{{"droppedBytes", &r.DroppedBytes}, {"droppedRecords", &r.DroppedRecords},
			{"reason", &r.Reason}}
	case *TraceContext:
		return [maxFields]field{{"spanId", &r.SpanID}, {"type", &r.Type}, {"value", &r.Value}}
	case *Span:
		return [maxFields]field{{"name", &r.Name}, {"start", &r.Start}, {"durationMs", &r.DurationMs}}
	}
	return [maxFields]field{}
}

// unknownDepth is the depth at which the hand decoder checks the values it skips: that of
// the deepest member it reads, a span's (in the batch, the envelope, the record, spans and
// the span). It is never less than a value's own depth, so that the decoder never accepts
// nesting that the walk over the batch refuses; at worst it declines, and that walk decides.
const unknownDepth = 5

// readRecord reads the record at s.pos of an envelope whose type came before it, as the walk
// over the envelope passes it, which saves a second walk over the record's text. It returns
// false, with s.pos unchanged, when the type is not a platform type or the hand decoder
// declines the record; the record is then read by (*scanner).record after the walk.
func (m *members) readRecord(s *scanner) bool {
	// The type is looked up as written: one with an escape is left to the walk. Log lines,
	// the bulk of the stream, are told apart without the look-up.
	typ := s.buf[m.found[1].a:m.found[1].b]
	if !bytes.HasPrefix(typ, []byte(`"platform.`)) {
		return false
	}
	t := knownTypes[string(typ[1:len(typ)-1])]
	rec := newPlatformRecord(t)
	start := s.pos
	if rec == nil || !s.decodeRecord(rec) {
		return false
	}
	m.rec, m.recType, m.recAt = rec, t, span{start, s.pos}
	return true
}

// decodeRecord reads the platform record at s.pos into rec, checking its syntax as
// skipValue does. It returns false, with s.pos unchanged and rec in any state, where it
// leaves the record to skipValue and encoding/json: a syntax error, nesting near the limit,
// or anything encoding/json might read otherwise.
func (s *scanner) decodeRecord(rec Record) bool {
	start := s.pos
	if s.null() || s.decodeObject(rec) {
		return true
	}
	s.pos = start
	return false
}

// decodeObject reads the object at s.pos into p, a platform record or one of its parts,
// checking its syntax as object does. As in encoding/json, names match in any letter case,
// the last of duplicate members wins and unknown members are skipped.
func (s *scanner) decodeObject(p any) bool {
	if s.peek() != '{' {
		return false
	}
	fields := fieldsOf(p)
	s.pos++
	s.skipSpace()
	if s.peek() == '}' {
		s.pos++
		return true
	}
	for {
		start := s.pos
		if s.peek() != '"' || s.skipString() != nil {
			return false
		}
		name := s.buf[start+1 : s.pos-1]
		s.skipSpace()
		if s.peek() != ':' {
			return false
		}
		s.pos++
		s.skipSpace()
		if f := lookup(&fields, name); f != nil {
			if !s.decodeValue(f.ptr) {
				return false
			}
		} else if bytes.IndexByte(name, '\\') >= 0 || s.skipValue(unknownDepth) != nil {
			// A name with an escape matches nothing as it stands: encoding/json unescapes it
			// first.
			return false
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// decodeValue reads the value at s.pos into the field at p, a pointer fieldsOf lists, as
// encoding/json would; it returns false, with the field in any state, where encoding/json
// would fail or might read the value otherwise.
func (s *scanner) decodeValue(p any) bool {
	start := s.pos
	switch q := p.(type) {
	case *string:
		if s.peek() != '"' {
			return s.null()
		}
		return s.stringValue(q)
	case *float64:
		if !isNumber(s.peek()) {
			return s.null()
		}
		if s.skipNumber() != nil {
			return false
		}
		f, err := strconv.ParseFloat(s.str[start:s.pos], 64)
		*q = f
		return err == nil
	case *Int:
		if !isNumber(s.peek()) {
			return s.skipValue(unknownDepth) == nil && q.UnmarshalJSON(s.buf[start:s.pos]) == nil
		}
		if s.skipNumber() != nil {
			return false
		}
		// What Int.UnmarshalJSON does with a number, without its trimming.
		n, ok := jsontext.ParseInt(s.str[start:s.pos])
		*q = Int(n)
		return ok
	case *time.Time:
		// Span.Start: Span.UnmarshalJSON makes any value but a readable timestamp zero,
		// null included.
		if s.skipValue(unknownDepth) != nil {
			return false
		}
		*q = time.Time{}
		if s.buf[start] == '"' {
			*q, _ = ParseTime(s.str[start+1 : s.pos-1])
		}
		return true
	case **TraceContext:
		return decodePointer(s, q)
	case **RuntimeDoneMetrics:
		return decodePointer(s, q)
	case **RestoreReportMetrics:
		return decodePointer(s, q)
	case *ReportMetrics, *InitReportMetrics: // null leaves a struct held by value as it is
		return s.null() || s.decodeObject(q)
	case *[]Span:
		// Span.UnmarshalJSON sets every field, so that an element keeps nothing an earlier
		// duplicate member left at its index, and null leaves it zero.
		return decodeSlice(s, q, &s.spans, func(sp *Span) bool { return s.null() || s.decodeObject(sp) })
	case *[]string:
		// A null element would keep whatever an earlier duplicate member left at its index.
		return decodeSlice(s, q, &s.strs, func(str *string) bool { return s.peek() == '"' && s.stringValue(str) })
	}
	return false
}

// stringValue reads the string at s.pos into *p: a substring of the batch's copy when it
// needs no unescaping.
func (s *scanner) stringValue(p *string) bool {
	start := s.pos
	plain, err := s.scanString()
	switch {
	case err != nil:
		return false
	case plain:
		*p = s.str[start+1 : s.pos-1]
	default:
		*p = s.jsonString(span{start, s.pos})
	}
	return true
}

// isNumber reports whether c starts a number.
func isNumber(c byte) bool { return c == '-' || c >= '0' && c <= '9' }

// lookup finds the field a member's name selects, matching as encoding/json does: the exact
// name, else the name under Unicode case folding.
func lookup(fields *[maxFields]field, name []byte) *field {
	for i := range fields {
		if fields[i].name == "" {
			break
		}
		if string(name) == fields[i].name {
			return &fields[i]
		}
	}
	for i := range fields {
		// Folding only ever lengthens a name (ſ for s, K for k), never shortens it.
		if n := fields[i].name; n != "" && len(name) >= len(n) && bytes.EqualFold(name, []byte(n)) {
			return &fields[i]
		}
	}
	return nil
}

// null steps over a null at s.pos, reporting whether there was one.
func (s *scanner) null() bool {
	return s.peek() == 'n' && s.literal("null") == nil
}

// decodePointer reads the object at s.pos into *p, allocating it when nil; null makes *p
// nil, as in encoding/json, which also merges a duplicate member into the struct already
// there.
func decodePointer[T any](s *scanner, p **T) bool {
	if s.null() {
		*p = nil
		return true
	}
	if *p == nil {
		*p = new(T)
	}
	return s.decodeObject(*p)
}

// decodeSlice reads the array at s.pos into a new slice of its length, each element with
// elem from its zero value, into scratch first, so that the slice is allocated once at its
// size. Null makes *p nil, and an empty array an empty slice, as in encoding/json.
func decodeSlice[T any](s *scanner, p *[]T, scratch *[]T, elem func(*T) bool) bool {
	if s.null() {
		*p = nil
		return true
	}
	if s.peek() != '[' {
		return false
	}
	elems := (*scratch)[:0]
	ok := s.elements(func() bool {
		elems = append(elems, *new(T))
		return elem(&elems[len(elems)-1])
	})
	*scratch = elems
	*p = make([]T, len(elems))
	copy(*p, elems)
	return ok
}

// elements steps through the array at s.pos, checking its syntax as skipValue does, and
// calls f at each element; f steps over the element, or returns false, which ends the walk
// with false.
func (s *scanner) elements(f func() bool) bool {
	s.pos++ // '['
	s.skipSpace()
	if s.peek() == ']' {
		s.pos++
		return true
	}
	for {
		if !f() {
			return false
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// cloneStrings gives the strings of p, a platform record or one of its parts, their own
// memory, releasing the batch's copy they slice.
func cloneStrings(p any) {
	for _, f := range fieldsOf(p) {
		switch q := f.ptr.(type) {
		case *string:
			*q = strings.Clone(*q)
		case *[]string:
			for i := range *q {
				(*q)[i] = strings.Clone((*q)[i])
			}
		case *[]Span:
			for i := range *q {
				cloneStrings(&(*q)[i])
			}
		case **TraceContext:
			if *q != nil {
				cloneStrings(*q)
			}
		}
	}
}
