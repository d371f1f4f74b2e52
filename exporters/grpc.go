package exporters

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/lambda-otel/lambda-otel/internal/pbwire"
)

// OTLP/gRPC is spoken over net/http's HTTP/2 client rather than through grpc-go: a unary
// call is one POST with a length-prefixed message and a status in the trailers, and
// grpc-go with its protobuf runtime would add about 3.8 MB to a 8 MB binary.

// gRPC status codes the exporter tells apart.
const (
	codeOK                = 0
	codeCanceled          = 1
	codeUnknown           = 2
	codeDeadlineExceeded  = 4
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeAborted           = 10
	codeOutOfRange        = 11
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
	codeDataLoss          = 15
	codeUnauthenticated   = 16
)

// errNoAnswer is the error of an answer that carries no status at all.
var errNoAnswer = errors.New("the answer has no gRPC status")

// grpcFrame prefixes msg with the gRPC message header: a compressed flag and its length.
func grpcFrame(msg []byte, compressed bool) []byte {
	b := make([]byte, 5+len(msg))
	if compressed {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

// grpcAnswer reads a gRPC answer: the status from the trailers (or the headers of a
// trailers-only answer), and on success the export response with its partial success.
func (s *sender) grpcAnswer(r Request, resp *http.Response, body []byte) attempt {
	items := r.Items()
	if resp.StatusCode != http.StatusOK {
		return grpcOutcome(httpToGRPC(resp.StatusCode), 0, false,
			fmt.Errorf("%s answered %s with HTTP %s%s", s.URL, r.Signal(), resp.Status, snippet(body)), items)
	}
	status, message, details := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message"), resp.Trailer.Get("Grpc-Status-Details-Bin")
	if status == "" {
		status, message, details = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"), resp.Header.Get("Grpc-Status-Details-Bin")
	}
	if status == "" {
		return grpcOutcome(codeInternal, 0, false, fmt.Errorf("%s answered %s: %w", s.URL, r.Signal(), errNoAnswer), items)
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		code = codeUnknown
	}
	if code == codeOK {
		msg, err := grpcMessage(body, resp.Header.Get("Grpc-Encoding"))
		if err != nil {
			return attempt{result: Result{Accepted: items}}
		}
		ps, err := r.decodeResponse(msg, false)
		if err != nil {
			return attempt{result: Result{Accepted: items}}
		}
		return attempt{result: partial(r, items, ps)}
	}
	if m, err := url.PathUnescape(message); err == nil {
		message = m
	}
	delay, hasDelay := retryInfo(details)
	return grpcOutcome(code, delay, hasDelay, fmt.Errorf("%s answered %s with gRPC status %d: %s", s.URL, r.Signal(), code, message), items)
}

// grpcOutcome classifies a status as the OTLP specification does: RESOURCE_EXHAUSTED is
// retried only when the server says when (RetryInfo).
func grpcOutcome(code int, delay time.Duration, hasDelay bool, err error, items int) attempt {
	switch code {
	case codeCanceled, codeDeadlineExceeded, codeAborted, codeOutOfRange, codeUnavailable, codeDataLoss:
	case codeResourceExhausted:
		if !hasDelay {
			return attempt{result: Result{Rejected: items, Err: err}}
		}
	default:
		return attempt{result: Result{Rejected: items, Err: err}}
	}
	return attempt{retry: true, retryAfter: delay, err: err, result: Result{Retryable: true, Err: err}}
}

// httpToGRPC maps the HTTP status of an answer that is not gRPC at all (a proxy's) to a
// gRPC code, as the gRPC specification says.
func httpToGRPC(status int) int {
	switch status {
	case http.StatusBadRequest:
		return codeInternal
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusForbidden:
		return codePermissionDenied
	case http.StatusNotFound:
		return codeUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codeUnavailable
	}
	return codeUnknown
}

// grpcMessage takes the first message out of a response body.
func grpcMessage(body []byte, encoding string) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if len(body) < 5 {
		return nil, fmt.Errorf("a gRPC frame of %d bytes", len(body))
	}
	n := binary.BigEndian.Uint32(body[1:5])
	if uint64(n) > uint64(len(body)-5) {
		return nil, fmt.Errorf("a gRPC frame of %d bytes announces %d", len(body), n)
	}
	msg := body[5 : 5+n]
	if body[0] == 0 {
		return msg, nil
	}
	if encoding != "gzip" {
		return nil, fmt.Errorf("a compressed gRPC message in %q", encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, maxResponseBytes))
}

// retryInfo finds the delay of a google.rpc.RetryInfo among the details of a
// google.rpc.Status (grpc-status-details-bin, base64).
func retryInfo(details string) (time.Duration, bool) {
	if details == "" {
		return 0, false
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(details, "="))
	if err != nil {
		return 0, false
	}
	// Status { int32 code = 1; string message = 2; repeated Any details = 3; }
	// Any { string type_url = 1; bytes value = 2; }
	// RetryInfo { Duration retry_delay = 1; }  Duration { int64 seconds = 1; int32 nanos = 2; }
	var delay time.Duration
	found := false
	pbwire.Repeated(raw, 3, func(detail []byte) {
		if !strings.HasSuffix(string(pbwire.Bytes(detail, 1)), "/google.rpc.RetryInfo") {
			return
		}
		found = true
		d := pbwire.Bytes(pbwire.Bytes(detail, 2), 1)
		delay = time.Duration(int64(pbwire.Uint(d, 1)))*time.Second + time.Duration(int32(pbwire.Uint(d, 2)))
	})
	return max(delay, 0), found
}
