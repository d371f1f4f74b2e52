// Package pbwire reads and writes fields of the few small protobuf messages the extension
// handles itself (OTLP export responses, google.rpc.Status and RetryInfo) without a
// protobuf runtime, which would weigh megabytes in a binary that only ever needs these.
package pbwire

import "errors"

// Wire types of the protobuf encoding.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errMalformed = errors.New("malformed protobuf message")

// field is one field of a message: its number, wire type, and value (v for varints and
// fixed-size values, data for length-delimited ones).
type field struct {
	num  int
	typ  int
	v    uint64
	data []byte
}

// fields calls fn for each field of the message b, in order.
func fields(b []byte, fn func(field)) error {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return errMalformed
		}
		b = b[n:]
		f := field{num: int(key >> 3), typ: int(key & 7)}
		switch f.typ {
		case wireVarint:
			f.v, n = uvarint(b)
			if n <= 0 {
				return errMalformed
			}
			b = b[n:]
		case wireFixed64, wireFixed32:
			size := 8
			if f.typ == wireFixed32 {
				size = 4
			}
			if len(b) < size {
				return errMalformed
			}
			for i := range size {
				f.v |= uint64(b[i]) << (8 * i)
			}
			b = b[size:]
		case wireBytes:
			l, n := uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errMalformed
			}
			f.data = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			return errMalformed
		}
		fn(f)
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

// Bytes returns the last occurrence of length-delimited field num in msg (a nested
// message, a string or bytes), or nil. A malformed message reads as far as it is sound.
func Bytes(msg []byte, num int) []byte {
	var out []byte
	Repeated(msg, num, func(b []byte) { out = b })
	return out
}

// Uint returns the last occurrence of varint field num in msg, or 0.
func Uint(msg []byte, num int) uint64 {
	var out uint64
	_ = fields(msg, func(f field) {
		if f.num == num && f.typ == wireVarint {
			out = f.v
		}
	})
	return out
}

// Repeated calls fn with each occurrence of length-delimited field num in msg.
func Repeated(msg []byte, num int, fn func([]byte)) {
	_ = fields(msg, func(f field) {
		if f.num == num && f.typ == wireBytes {
			fn(f.data)
		}
	})
}

// AppendUint appends varint field num with value v to msg.
func AppendUint(msg []byte, num int, v uint64) []byte {
	msg = appendVarint(msg, uint64(num)<<3|wireVarint)
	return appendVarint(msg, v)
}

// AppendBytes appends length-delimited field num (a nested message, a string or bytes)
// to msg.
func AppendBytes(msg []byte, num int, data []byte) []byte {
	msg = appendVarint(msg, uint64(num)<<3|wireBytes)
	msg = appendVarint(msg, uint64(len(data)))
	return append(msg, data...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
