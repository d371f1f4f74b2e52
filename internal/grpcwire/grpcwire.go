// Package grpcwire frames gRPC messages, for the exporter and the receiver that speak
// OTLP/gRPC over net/http's HTTP/2 rather than through grpc-go: a unary call is one POST
// with a length-prefixed message and a status in the trailers, and grpc-go with its
// protobuf runtime would add about 3.8 MB to the extension's binary.
package grpcwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// HeaderBytes is the size of a message's prefix: a compressed flag and a length.
const HeaderBytes = 5

// ErrTooLarge is returned for a message, compressed or not, over the limit.
var ErrTooLarge = errors.New("the gRPC message is over the size limit")

// Frame prefixes msg with the gRPC message header.
func Frame(msg []byte, compressed bool) []byte {
	b := make([]byte, HeaderBytes+len(msg))
	if compressed {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:HeaderBytes], uint32(len(msg)))
	copy(b[HeaderBytes:], msg)
	return b
}

// Message takes the first message out of a body, uncompressing it as encoding (the
// grpc-encoding header) says, to at most limit bytes. An empty body has no message.
func Message(body []byte, encoding string, limit int) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if len(body) < HeaderBytes {
		return nil, fmt.Errorf("a gRPC frame of %d bytes", len(body))
	}
	n := binary.BigEndian.Uint32(body[1:HeaderBytes])
	if uint64(n) > uint64(len(body)-HeaderBytes) {
		return nil, fmt.Errorf("a gRPC frame of %d bytes announces %d", len(body), n)
	}
	msg := body[HeaderBytes : HeaderBytes+n]
	if body[0] == 0 {
		if len(msg) > limit {
			return nil, ErrTooLarge
		}
		return msg, nil
	}
	if encoding != "gzip" {
		return nil, fmt.Errorf("a compressed gRPC message in %q", encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, nil
}
