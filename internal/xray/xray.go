// Package xray reads the AWS X-Ray trace header (X-Amzn-Trace-Id) into W3C trace context,
// the form OpenTelemetry uses. The header travels in the Telemetry API's tracing.value, in
// the INVOKE event and in the runtime's Lambda-Runtime-Trace-Id.
package xray

import "strings"

// Sampling is the header's Sampled field.
type Sampling int8

// Sampling decisions. Unknown covers "Sampled=?" and a missing field.
const (
	SamplingUnknown Sampling = iota
	SamplingYes
	SamplingNo
)

// Header is a parsed trace header. Each part is valid only when its flag says so: a bad
// Root or Parent is left out rather than failing the whole header, so that what can be
// kept is kept.
type Header struct {
	// TraceID is Root in W3C form: its epoch and random parts, 16 bytes.
	TraceID    [16]byte
	HasTraceID bool
	// ParentID is Parent, the caller's span id.
	ParentID    [8]byte
	HasParentID bool
	Sampled     Sampling
}

// Parse reads a header such as "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1".
// Fields come in any order with white space around them; unknown fields (Lineage, Self, …)
// are ignored. Root must be version 1 with 8 and 24 hex digits, Parent 16 hex digits, and
// neither may be all zeros, which W3C forbids.
func Parse(s string) Header {
	var h Header
	for s != "" {
		var field string
		field, s, _ = strings.Cut(s, ";")
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		switch value = strings.TrimSpace(value); strings.TrimSpace(key) {
		case "Root":
			h.HasTraceID = parseRoot(value, &h.TraceID)
		case "Parent":
			h.HasParentID = len(value) == 16 && decodeHex(h.ParentID[:], value)
		case "Sampled":
			switch value {
			case "1":
				h.Sampled = SamplingYes
			case "0":
				h.Sampled = SamplingNo
			default:
				h.Sampled = SamplingUnknown
			}
		}
	}
	return h
}

// parseRoot reads "1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY" into id.
func parseRoot(v string, id *[16]byte) bool {
	if len(v) != 35 || v[:2] != "1-" || v[10] != '-' {
		return false
	}
	return decodeHex(id[:4], v[2:10]) && decodeHex(id[4:], v[11:])
}

// decodeHex fills dst from the hex digits in s (len(s) == 2*len(dst)) and reports whether
// s was hex and dst is not all zeros.
func decodeHex(dst []byte, s string) bool {
	var or byte
	for i := range dst {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi > 0xf || lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
		or |= dst[i]
	}
	return or != 0
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// ParseSpanID reads a 16-hex-digit span id such as the Telemetry API's tracing.spanId.
func ParseSpanID(s string) (id [8]byte, ok bool) {
	s = strings.TrimSpace(s)
	ok = len(s) == 16 && decodeHex(id[:], s)
	return id, ok
}
