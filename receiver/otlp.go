package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/pbwire"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

// signal is what an OTLP export request carries, with the names the protocols give it.
type signal struct {
	kind telemetry.Signal
	// path is the OTLP/HTTP path; service the gRPC method's path.
	path, service string
	// rejected is the JSON name of the partial success's count.
	rejected string
	// decode reads a request body, protobuf unless asJSON, and says how many of its items
	// it refused.
	decode func(body []byte, asJSON bool) (rec telemetry.Received, refused int, err error)
}

var signals = [...]signal{
	{telemetry.SignalTraces, "/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", "rejectedSpans", decodeTraces},
	{telemetry.SignalLogs, "/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", "rejectedLogRecords", decodeLogs},
	{telemetry.SignalMetrics, "/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "rejectedDataPoints", decodeMetrics},
}

// errInvalidIDs is the partial success message for spans refused for their ids.
const errInvalidIDs = "spans with an all-zero trace id or span id were refused"

func decodeTraces(body []byte, asJSON bool) (telemetry.Received, int, error) {
	td, err := either[ptrace.Unmarshaler](asJSON, &ptrace.JSONUnmarshaler{}, &ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		return telemetry.Received{}, 0, err
	}
	invalid := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			ss.Spans().RemoveIf(func(s ptrace.Span) bool {
				bad := s.TraceID().IsEmpty() || s.SpanID().IsEmpty()
				if bad {
					invalid++
				}
				return bad
			})
		}
	}
	return telemetry.Received{Traces: td, Items: td.SpanCount()}, invalid, nil
}

func decodeLogs(body []byte, asJSON bool) (telemetry.Received, int, error) {
	ld, err := either[plog.Unmarshaler](asJSON, &plog.JSONUnmarshaler{}, &plog.ProtoUnmarshaler{}).UnmarshalLogs(body)
	if err != nil {
		return telemetry.Received{}, 0, err
	}
	return telemetry.Received{Logs: ld, Items: ld.LogRecordCount()}, 0, nil
}

func decodeMetrics(body []byte, asJSON bool) (telemetry.Received, int, error) {
	md, err := either[pmetric.Unmarshaler](asJSON, &pmetric.JSONUnmarshaler{}, &pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(body)
	if err != nil {
		return telemetry.Received{}, 0, err
	}
	return telemetry.Received{Metrics: md, Items: md.DataPointCount()}, 0, nil
}

// either is asJSON's choice of a JSON or a protobuf unmarshaler.
func either[T any](asJSON bool, json, proto T) T {
	if asJSON {
		return json
	}
	return proto
}

// outcome is what became of a request, for either protocol to answer.
type outcome int

const (
	accepted outcome = iota
	// full: the buffer has no room; the sender may retry after retryAfter.
	full
	// malformed: the body could not be read as the signal's request.
	malformed
	// tooLarge: the body, compressed or not, is over the limit.
	tooLarge
	// unsupported: a media type or an encoding the receiver does not speak.
	unsupported
)

// retryAfter is how long a sender refused for a full buffer is asked to wait: the buffer
// empties at the next flush, at the latest when the invocation ends.
const retryAfter = time.Second

// answer is the outcome of a request and what to tell its sender.
type answer struct {
	outcome outcome
	// rejected counts items refused for good within an accepted request.
	rejected int
	message  string
}

// take decodes body as sig's request and offers it to the buffer, counting what happened.
func (r *Receiver) take(sig *signal, body []byte, asJSON bool) answer {
	rec, refused, err := sig.decode(body, asJSON)
	if err != nil {
		r.stats.Fail(telemetry.ReceiveMalformed)
		return answer{outcome: malformed, message: fmt.Sprintf("the body is not an OTLP %s request: %v", sig.kind, err)}
	}
	rec.Size = len(body)
	var a answer
	if refused > 0 {
		r.stats.Receive(sig.kind, telemetry.ReceiveInvalid, refused)
		a = answer{rejected: refused, message: errInvalidIDs}
	}
	if rec.Items == 0 {
		return a
	}
	if !r.buf.Offer(rec) {
		r.stats.Receive(sig.kind, telemetry.ReceiveBufferFull, rec.Items)
		return answer{outcome: full, message: "the extension's buffer is full; retry later"}
	}
	r.stats.Receive(sig.kind, telemetry.ReceiveAccepted, rec.Items)
	return a
}

// response encodes the Export*ServiceResponse of an accepted request: empty unless some
// items were refused (partial success).
func (a answer) response(sig *signal, asJSON bool) []byte {
	if asJSON {
		if a.rejected == 0 {
			return []byte("{}")
		}
		b, _ := json.Marshal(map[string]map[string]any{"partialSuccess": {
			sig.rejected: strconv.Itoa(a.rejected), "errorMessage": a.message,
		}})
		return b
	}
	if a.rejected == 0 {
		return nil
	}
	var partial []byte
	partial = pbwire.AppendUint(partial, 1, uint64(a.rejected))
	partial = pbwire.AppendBytes(partial, 2, []byte(a.message))
	return pbwire.AppendBytes(nil, 1, partial)
}

// gRPC status codes the receiver answers with.
const (
	codeOK                = 0
	codeInvalidArgument   = 3
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
)

// statusMessage encodes a google.rpc.Status, the body of an OTLP/HTTP error and the details of a
// gRPC one; with a retry delay it carries a google.rpc.RetryInfo.
func statusMessage(code int, message string, retry time.Duration, asJSON bool) []byte {
	if asJSON {
		b, _ := json.Marshal(struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}{code, message})
		return b
	}
	var st []byte
	st = pbwire.AppendUint(st, 1, uint64(code))
	st = pbwire.AppendBytes(st, 2, []byte(message))
	if retry > 0 {
		var d []byte
		d = pbwire.AppendUint(d, 1, uint64(retry/time.Second))
		if ns := retry % time.Second; ns > 0 {
			d = pbwire.AppendUint(d, 2, uint64(ns))
		}
		var any []byte
		any = pbwire.AppendBytes(any, 1, []byte("type.googleapis.com/google.rpc.RetryInfo"))
		any = pbwire.AppendBytes(any, 2, pbwire.AppendBytes(nil, 1, d))
		st = pbwire.AppendBytes(st, 3, any)
	}
	return st
}

// errTooLarge is the error of a body over the limit once uncompressed.
var errTooLarge = errors.New("the body is over the receiver's limit")
