package exporters

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/grpcwire"
	"github.com/lambda-otel/lambda-otel/internal/pbwire"
)

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
		msg, err := grpcwire.Message(body, resp.Header.Get("Grpc-Encoding"), maxResponseBytes)
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
