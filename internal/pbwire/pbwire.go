// Package pbwire reads the few protobuf messages the exporters receive (OTLP export
// responses, google.rpc.Status and RetryInfo) without a protobuf runtime, which would
// weigh megabytes in a binary that only ever reads four small messages.
package pbwire

import "errors"

// Wire types of the protobuf encoding.
const (
	Varint  = 0
	Fixed64 = 1
	Bytes   = 2
	Fixed32 = 5
)

var errMalformed = errors.New("malformed protobuf message")

// Field is one field of a message: its number, wire type, and value (v for varints and
// fixed-size values, data for length-delimited ones).
type Field struct {
	Num  int
	Type int
	V    uint64
	Data []byte
}

// Fields calls fn for each field of the message b, in order.
func Fields(b []byte, fn func(Field) error) error {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return errMalformed
		}
		b = b[n:]
		f := Field{Num: int(key >> 3), Type: int(key & 7)}
		switch f.Type {
		case Varint:
			f.V, n = uvarint(b)
			if n <= 0 {
				return errMalformed
			}
			b = b[n:]
		case Fixed64, Fixed32:
			size := 8
			if f.Type == Fixed32 {
				size = 4
			}
			if len(b) < size {
				return errMalformed
			}
			for i := range size {
				f.V |= uint64(b[i]) << (8 * i)
			}
			b = b[size:]
		case Bytes:
			l, n := uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errMalformed
			}
			f.Data = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			return errMalformed
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// uvarint decodes a varint, returning its length, or 0 if b is too short or overlong.
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}
