package telemetry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
)

// maxDepth bounds nesting inside a batch, at encoding/json's own limit, so that both accept
// the same bodies.
const maxDepth = 10000

// DecodeBatch decodes a Telemetry API POST body, a JSON array of events, appending the
// events to dst. It keeps going past an element whose envelope or record has the wrong
// shape (that element becomes a *Raw record), but a syntax error ends the batch: it then
// returns the events read before the fault together with an error saying where it was.
// The returned events own their memory; body may be reused afterwards.
//
// The envelope is walked by hand rather than by encoding/json: a batch is mostly log lines,
// and a line whose text needs no unescaping then costs one allocation, its *Log, with its
// text a substring of a single per-batch copy of the body.
func DecodeBatch(dst []Event, body []byte) ([]Event, error) {
	s := scanner{buf: body}
	s.skipSpace()
	if s.pos == len(body) {
		return dst, errors.New("batch is not JSON: the body is empty")
	}
	if body[s.pos] != '[' {
		return dst, fmt.Errorf("batch is not a JSON array: it starts with %q", body[s.pos])
	}
	s.pos++
	s.str = string(body)
	s.skipSpace()
	if s.peek() == ']' {
		s.pos++
		return dst, s.end()
	}
	first, used := len(dst), 0
	// Text fields slice one copy of the body. When the events hold less than half of it
	// (padding, or a prefix kept from a broken batch), they get their own copies instead,
	// so the buffer's byte bound stays a bound on memory.
	defer func() {
		if used < len(body)/2 {
			detach(dst[first:])
		}
	}()
	for i := 0; ; i++ {
		start := s.pos
		ev, err := s.event()
		if err != nil {
			return dst, fmt.Errorf("event %d at byte %d: %w", i, start, err)
		}
		ev.Size = s.pos - start
		used += ev.Size
		dst = append(dst, ev)
		done, err := s.separator(']', "after an event")
		switch {
		case err != nil:
			return dst, fmt.Errorf("event %d at byte %d: %w", i+1, s.pos, err)
		case done:
			return dst, s.end()
		}
	}
}

// separator reads what follows a member or an element: a comma, after which it skips to the
// next one, or the closing byte, which ends the container (done).
func (s *scanner) separator(closing byte, where string) (done bool, err error) {
	s.skipSpace()
	switch s.peek() {
	case ',':
		s.pos++
		s.skipSpace()
		return false, nil
	case closing:
		s.pos++
		return true, nil
	default:
		return false, s.unexpected("',' or '" + string(closing) + "' " + where)
	}
}

// scanner walks one batch. str is the batch's one string copy, which text fields slice.
type scanner struct {
	buf []byte
	str string
	pos int
	// spans and strs hold the elements of an array of a platform record while it is read,
	// so that its slice is allocated once, at its length.
	spans []Span
	strs  []string
}

func (s *scanner) peek() byte {
	if s.pos < len(s.buf) {
		return s.buf[s.pos]
	}
	return 0
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) unexpected(want string) error {
	if s.pos >= len(s.buf) {
		return fmt.Errorf("unexpected end of the body, want %s", want)
	}
	return fmt.Errorf("unexpected %q at byte %d, want %s", s.buf[s.pos], s.pos, want)
}

// end checks that only white space follows the array.
func (s *scanner) end() error {
	s.skipSpace()
	if s.pos != len(s.buf) {
		return fmt.Errorf("end of batch: %w", s.unexpected("nothing after the array"))
	}
	return nil
}

// event reads one element of the array.
func (s *scanner) event() (Event, error) {
	start := s.pos
	// Depth counts enclosing containers, the batch's array being the first.
	if s.peek() != '{' {
		if err := s.skipValue(1); err != nil {
			return Event{}, err
		}
		return Event{Record: &Raw{JSON: bytes.Clone(s.buf[start:s.pos]), Err: "event envelope: not a JSON object"}}, nil
	}
	env := members{names: envelopeNames, records: true}
	if err := s.object(1, &env); err != nil {
		return Event{}, err
	}
	var ev Event
	var bad []string
	if str, isStr, ok := s.text(env.found[0]); !ok {
		bad = append(bad, "time is not a string")
	} else if isStr {
		ev.Time = parseTimeString(str)
	}
	if str, isStr, ok := s.text(env.found[1]); !ok {
		bad = append(bad, "type is not a string")
	} else if isStr {
		ev.Type = internType(str)
	}
	if bad != nil {
		ev.Record = &Raw{JSON: bytes.Clone(s.buf[start:s.pos]), Err: "event envelope: " + strings.Join(bad, "; ")}
		return ev, nil
	}
	if env.rec != nil && env.recAt == env.found[2] && env.recType == ev.Type {
		ev.Record = env.rec
	} else {
		ev.Record = s.record(ev.Type, env.found[2])
	}
	return ev, nil
}

// span locates a value in the batch: buf[a:b].
type span struct{ a, b int }

// Members located in an event and in a JSON log line. Names match in any letter case, as
// encoding/json matches them.
var (
	envelopeNames = []string{"time", "type", "record"}
	logNames      = []string{"timestamp", "level", "requestId", "AWSrequestId", "message"}
)

// members locates, while an object is read, the values of the members it names: found[i]
// is the value of names[i], empty when absent (the last one wins, as in encoding/json).
type members struct {
	names []string
	found [5]span
	// records is set for an envelope: its platform record is then read as the walk passes
	// it, when the type came first, as the platform sends it (see readRecord). rec is the
	// last record read so, for type recType at recAt.
	records bool
	rec     Record
	recType EventType
	recAt   span
}

// value steps over the value at s.pos of the member named key, and records where it is if
// m names the member. A null value counts as absent, as it leaves a string field untouched
// in encoding/json.
func (m *members) value(s *scanner, key []byte, depth int) error {
	start := s.pos
	i := m.index(key)
	if !(m.records && i == 2 && m.readRecord(s)) { // names[2] is an envelope's record
		if err := s.skipValue(depth); err != nil {
			return err
		}
	}
	if i >= 0 && string(s.buf[start:s.pos]) != "null" {
		m.found[i] = span{start, s.pos}
	}
	return nil
}

// index returns the index in names of the member named key, unescaped and folded as
// encoding/json matches names, or -1.
func (m *members) index(key []byte) int {
	for i, n := range m.names {
		if string(key) == n {
			return i
		}
	}
	if bytes.IndexByte(key, '\\') >= 0 {
		k, ok := jsontext.Unquote(key)
		if !ok {
			return -1
		}
		key = []byte(k)
	}
	for i, n := range m.names {
		// Folding only ever lengthens a name (ſ for s, K for k), never shortens it.
		if len(key) >= len(n) && bytes.EqualFold(key, []byte(n)) {
			return i
		}
	}
	return -1
}

// text returns the string the value at v holds. ok is false when the value is present, not
// null and not a string; isStr is true when it is a string.
func (s *scanner) text(v span) (str string, isStr, ok bool) {
	raw := s.buf[v.a:v.b]
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false, true
	case raw[0] != '"':
		return "", false, false
	}
	return s.jsonString(v), true, true
}

// jsonString returns the string at v: a substring of the batch's copy when it needs no
// unescaping.
func (s *scanner) jsonString(v span) string {
	inner := s.buf[v.a+1 : v.b-1]
	if plainJSONString(inner) {
		return s.str[v.a+1 : v.b-1]
	}
	if out, ok := jsontext.Unquote(inner); ok {
		return out
	}
	return s.str[v.a:v.b]
}

// record types the record at v; it never fails, falling back to *Raw.
func (s *scanner) record(t EventType, v span) Record {
	raw := s.buf[v.a:v.b]
	if t == TypeFunction || t == TypeExtensionLog {
		switch {
		case len(raw) == 0 || string(raw) == "null":
			return &Log{}
		case raw[0] == '"':
			return &Log{Text: s.jsonString(v)}
		case raw[0] == '{':
			return s.logObject(v)
		default:
			return &Log{Text: s.str[v.a:v.b]}
		}
	}
	rec := newPlatformRecord(t)
	if rec == nil {
		return &Raw{JSON: bytes.Clone(raw)}
	}
	if len(raw) == 0 {
		return rec
	}
	end := s.pos
	s.pos = v.a
	ok := s.decodeRecord(rec)
	s.pos = end
	if ok {
		return rec
	}
	// The hand decoder declined, perhaps halfway: encoding/json reads a fresh record, so
	// that a record it cannot read either keeps its error message.
	rec = newPlatformRecord(t)
	if err := json.Unmarshal(raw, rec); err != nil {
		return &Raw{JSON: bytes.Clone(raw), Err: fmt.Sprintf("%s record: %v", t, err)}
	}
	return rec
}

// object reads an object at pos, locating the members m names when m is not nil.
func (s *scanner) object(depth int, m *members) error {
	if depth+1 > maxDepth {
		return errors.New("nesting too deep")
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.unexpected("a member name")
		}
		kstart := s.pos
		if err := s.skipString(); err != nil {
			return err
		}
		key := s.buf[kstart+1 : s.pos-1]
		s.skipSpace()
		if s.peek() != ':' {
			return s.unexpected("':'")
		}
		s.pos++
		s.skipSpace()
		var err error
		if m != nil {
			err = m.value(s, key, depth+1)
		} else {
			err = s.skipValue(depth + 1)
		}
		if err != nil {
			return err
		}
		if done, err := s.separator('}', "in an object"); done || err != nil {
			return err
		}
	}
}

// skipValue steps over one JSON value, checking its syntax; depth is the number of
// containers around it.
func (s *scanner) skipValue(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		if depth+1 > maxDepth {
			return errors.New("nesting too deep")
		}
		s.pos++
		s.skipSpace()
		if s.peek() == ']' {
			s.pos++
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if done, err := s.separator(']', "in an array"); done || err != nil {
				return err
			}
		}
	case c == '"':
		return s.skipString()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.skipNumber()
	default:
		return s.unexpected("a value")
	}
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.buf[s.pos:], []byte(lit)) {
		return s.unexpected(lit)
	}
	s.pos += len(lit)
	return nil
}

// skipString steps over a string, refusing raw control characters and bad escapes as JSON does.
func (s *scanner) skipString() error {
	_, err := s.scanString()
	return err
}

// scanString steps over a string as skipString does, and reports whether its inside reads as
// itself (see plainJSONString), which saves a second look at the text of a string read at once.
func (s *scanner) scanString() (plain bool, err error) {
	// The position lives in a local while the plain bytes, nearly all of them, go by: through
	// s it would be loaded and stored again for each byte.
	buf, inside := s.buf, s.pos+1 // after the opening quote
	i := inside
	var seen uint64 // the bytes passed, or-ed together: a high bit set means non-ASCII
	escaped := false
	for {
		for i+8 <= len(buf) {
			x := binary.LittleEndian.Uint64(buf[i:])
			if m := special(x) & highBits; m != 0 {
				n := bits.TrailingZeros64(m) / 8 // the first flagged byte is one of them
				seen |= x & (1<<(8*n) - 1)
				i += n
				break
			}
			seen |= x
			i += 8
		}
		for i < len(buf) && buf[i] >= 0x20 && buf[i] != '"' && buf[i] != '\\' {
			seen |= uint64(buf[i])
			i++
		}
		s.pos = i
		switch {
		case i >= len(buf):
			return false, s.unexpected("the end of a string")
		case buf[i] == '"':
			s.pos++
			return !escaped && (seen&highBits == 0 || utf8.Valid(buf[inside:i])), nil
		case buf[i] < 0x20:
			return false, s.unexpected("no control character in a string")
		case i+1 >= len(buf):
			s.pos++
			return false, s.unexpected("an escape")
		}
		escaped = true
		switch buf[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if jsontext.Hex4(buf[i+2:]) < 0 {
				s.pos++
				return false, s.unexpected(`four hex digits after \u`)
			}
			i += 6
		default:
			s.pos++
			return false, s.unexpected("an escape")
		}
	}
}

// Strings are looked at eight bytes at a time, as a uint64 read little-endian.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// special(x)&highBits flags the bytes of x that are control characters, quotes or
// backslashes. It may flag another byte too, but only above one of those (a borrow carries
// up), so that the lowest flagged byte is always one.
func special(x uint64) uint64 {
	return (x - 0x20*lowBits | (x ^ '"'*lowBits - lowBits) | (x ^ '\\'*lowBits - lowBits)) &^ x
}

// skipNumber steps over a number following JSON's grammar.
func (s *scanner) skipNumber() error {
	digits := func() int {
		n := 0
		for s.pos < len(s.buf) && s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.pos++
	}
	if s.peek() == '0' {
		s.pos++
	} else if digits() == 0 {
		return s.unexpected("a digit")
	}
	if s.peek() == '.' {
		s.pos++
		if digits() == 0 {
			return s.unexpected("a digit after '.'")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if digits() == 0 {
			return s.unexpected("a digit in the exponent")
		}
	}
	return nil
}

// knownTypes maps each known type's name to its constant.
var knownTypes = func() map[string]EventType {
	m := make(map[string]EventType)
	for _, t := range []EventType{TypeFunction, TypeExtensionLog, TypeStart, TypeRuntimeDone, TypeReport,
		TypeInitStart, TypeInitRuntimeDone, TypeInitReport, TypeRestoreStart, TypeRestoreRuntimeDone,
		TypeRestoreReport, TypeExtension, TypeTelemetrySubscription, TypeLogsDropped} {
		m[string(t)] = t
	}
	return m
}()

// internType returns the constant for a known type, so that no event's type keeps the
// batch's copy alive; an unknown type gets its own copy.
func internType(s string) EventType {
	if t, ok := knownTypes[s]; ok {
		return t
	}
	return EventType(strings.Clone(s))
}

// newPlatformRecord returns an empty record for a platform type, or nil for one it does not know.
func newPlatformRecord(t EventType) Record {
	switch t {
	case TypeInitStart:
		return new(InitStart)
	case TypeInitRuntimeDone:
		return new(InitRuntimeDone)
	case TypeInitReport:
		return new(InitReport)
	case TypeStart:
		return new(Start)
	case TypeRuntimeDone:
		return new(RuntimeDone)
	case TypeReport:
		return new(Report)
	case TypeRestoreStart:
		return new(RestoreStart)
	case TypeRestoreRuntimeDone:
		return new(RestoreRuntimeDone)
	case TypeRestoreReport:
		return new(RestoreReport)
	case TypeExtension:
		return new(Extension)
	case TypeTelemetrySubscription:
		return new(TelemetrySubscription)
	case TypeLogsDropped:
		return new(LogsDropped)
	default:
		return nil
	}
}

// logObject reads a log line in the JSON log format at v, an object already checked by
// the walk over the batch.
func (s *scanner) logObject(v span) Record {
	m := members{names: logNames}
	sub := scanner{buf: s.buf[:v.b], str: s.str, pos: v.a}
	if err := sub.object(1, &m); err != nil {
		return &Raw{JSON: bytes.Clone(s.buf[v.a:v.b]), Err: "log record: " + err.Error()}
	}
	l := &Log{
		Object:    bytes.Clone(s.buf[v.a:v.b]),
		Level:     s.valueText(m.found[1]),
		RequestID: s.valueText(m.found[2]),
		Message:   s.valueText(m.found[4]),
	}
	if l.RequestID == "" {
		l.RequestID = s.valueText(m.found[3])
	}
	if ts, isStr, _ := s.text(m.found[0]); isStr {
		l.Timestamp, _ = ParseTime(ts)
	}
	return l
}

// valueText returns the string at v, or the JSON text of a value of another kind; "" when
// absent.
func (s *scanner) valueText(v span) string {
	if v.b-v.a >= 2 && s.buf[v.a] == '"' {
		return s.jsonString(v)
	}
	return s.str[v.a:v.b]
}

// detach gives the text of events their own memory, releasing the batch's copy.
func detach(events []Event) {
	for i := range events {
		switch r := events[i].Record.(type) {
		case *Log:
			r.Text = strings.Clone(r.Text)
			r.Level = strings.Clone(r.Level)
			r.RequestID = strings.Clone(r.RequestID)
			r.Message = strings.Clone(r.Message)
		case *Raw: // its bytes are its own already
		default:
			cloneStrings(r)
		}
	}
}

// plainJSONString reports whether b, the inside of a JSON string, reads as itself: no
// escapes, no control characters, valid UTF-8.
func plainJSONString(b []byte) bool {
	for len(b) >= 8 && (special(binary.LittleEndian.Uint64(b))|binary.LittleEndian.Uint64(b))&highBits == 0 {
		b = b[8:] // eight bytes of plain ASCII
	}
	ascii := true
	for _, c := range b {
		if c == '\\' || c < 0x20 || c == '"' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.Valid(b)
}

// parseTimeJSON reads a JSON string value holding a timestamp.
func parseTimeJSON(raw json.RawMessage) (time.Time, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return time.Time{}, false
	}
	return ParseTime(string(raw[1 : len(raw)-1]))
}

func parseTimeString(s string) time.Time {
	t, _ := ParseTime(s)
	return t
}

// ParseTime reads an ISO 8601 timestamp with or without fractional seconds, and also the
// "12:01:23:521Z" form (a colon before the milliseconds) that the guide's examples use. The
// platform's own form, 2022-10-12T00:00:15.064Z, is read without time.Parse.
func ParseTime(s string) (time.Time, bool) {
	if t, ok := parseUTC(s); ok {
		return t, true
	}
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

// parseUTC reads YYYY-MM-DDTHH:MM:SS[.fraction]Z; anything else is left to time.Parse.
func parseUTC(s string) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	switch frac := s[19 : len(s)-1]; {
	case frac == "":
	case frac[0] == '.' && len(frac) >= 2 && len(frac) <= 10:
		n, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if day > 28 && t.Day() != day { // 31 April and the like: time.Date would roll over
		return time.Time{}, false
	}
	return t, true
}
