package convert

import (
	"errors"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
)

// maxJSONDepth bounds the nesting of a log object turned into attributes. A deeper object is
// not an error the user made, but attributes that deep serve no one: the line is then kept
// as text.
const maxJSONDepth = 64

var errJSON = errors.New("not a JSON value")

// jsonReader reads JSON text straight into pdata values, without an intermediate tree.
type jsonReader struct {
	b   []byte
	pos int
}

func (r *jsonReader) ws() {
	for r.pos < len(r.b) {
		switch r.b[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos < len(r.b) {
		return r.b[r.pos]
	}
	return 0
}

// eof reports whether only white space is left.
func (r *jsonReader) eof() bool {
	r.ws()
	return r.pos >= len(r.b)
}

// str reads a string.
func (r *jsonReader) str() (string, error) {
	if r.peek() != '"' {
		return "", errJSON
	}
	start := r.pos + 1
	plain := true // ASCII without escapes or control bytes reads as itself
	for i := start; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '\\':
			plain = false
			i++
		case c < 0x20 || c >= 0x80:
			plain = false
		case c == '"':
			r.pos = i + 1
			if plain {
				return string(r.b[start:i]), nil
			}
			s, ok := jsontext.Unquote(r.b[start:i])
			if !ok {
				return "", errJSON
			}
			return s, nil
		}
	}
	return "", errJSON
}

// number returns the text of a number.
func (r *jsonReader) number() []byte {
	r.ws()
	start := r.pos
	for r.pos < len(r.b) {
		switch c := r.b[r.pos]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			r.pos++
		default:
			return r.b[start:r.pos]
		}
	}
	return r.b[start:r.pos]
}

func (r *jsonReader) literal(lit string) bool {
	if len(r.b)-r.pos >= len(lit) && string(r.b[r.pos:r.pos+len(lit)]) == lit {
		r.pos += len(lit)
		return true
	}
	return false
}

// members calls fn for each member of the object at the reader, with the reader at the
// member's value; fn must read or skip that value.
func (r *jsonReader) members(fn func(key string) error) error {
	if r.peek() != '{' {
		return errJSON
	}
	r.pos++
	if r.peek() == '}' {
		r.pos++
		return nil
	}
	for {
		key, err := r.str()
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return errJSON
		}
		r.pos++
		if err := fn(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			return nil
		default:
			return errJSON
		}
	}
}

// elements calls fn for each element of the array at the reader, with the reader at the
// element; fn must read or skip it.
func (r *jsonReader) elements(fn func() error) error {
	if r.peek() != '[' {
		return errJSON
	}
	r.pos++
	if r.peek() == ']' {
		r.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return nil
		default:
			return errJSON
		}
	}
}

// value reads any value into v; null leaves v empty.
func (r *jsonReader) value(v pcommon.Value, depth int) error {
	if depth > maxJSONDepth {
		return errJSON
	}
	switch c := r.peek(); {
	case c == '"':
		s, err := r.str()
		v.SetStr(s)
		return err
	case c == '{':
		m := v.SetEmptyMap()
		return r.members(func(key string) error { return r.value(m.PutEmpty(key), depth+1) })
	case c == '[':
		sl := v.SetEmptySlice()
		return r.elements(func() error { return r.value(sl.AppendEmpty(), depth+1) })
	case c == 't' && r.literal("true"):
		v.SetBool(true)
	case c == 'f' && r.literal("false"):
		v.SetBool(false)
	case c == 'n' && r.literal("null"):
	case c == '-' || c >= '0' && c <= '9':
		return setNumber(v, r.number())
	default:
		return errJSON
	}
	return nil
}

// setNumber stores an integer as an int and anything else as a double.
func setNumber(v pcommon.Value, num []byte) error {
	s := string(num)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		v.SetInt(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return errJSON
	}
	v.SetDouble(f)
	return nil
}
