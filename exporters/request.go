package exporters

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/jsontext"
	"github.com/lambda-otel/lambda-otel/internal/pbwire"
)

// Signal is one of the OpenTelemetry signals.
type Signal int

// The signals, in the order the extension exports them.
const (
	Traces Signal = iota
	Logs
	Metrics
	numSignals
)

// Signals lists every signal.
var Signals = [numSignals]Signal{Traces, Logs, Metrics}

var signalInfo = [numSignals]struct {
	name, path, grpcMethod, rejected string
}{
	{"traces", "/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", "rejectedSpans"},
	{"logs", "/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", "rejectedLogRecords"},
	{"metrics", "/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "rejectedDataPoints"},
}

// String returns "traces", "logs" or "metrics".
func (s Signal) String() string { return signalInfo[s].name }

// Request is one signal's data to export. A Request is not modified once made, so the same
// one can be handed to several exporters.
type Request struct {
	signal  Signal
	traces  ptrace.Traces
	logs    plog.Logs
	metrics pmetric.Metrics
}

// TracesRequest, LogsRequest and MetricsRequest wrap one signal's data.
func TracesRequest(td ptrace.Traces) Request    { return Request{signal: Traces, traces: td} }
func LogsRequest(ld plog.Logs) Request          { return Request{signal: Logs, logs: ld} }
func MetricsRequest(md pmetric.Metrics) Request { return Request{signal: Metrics, metrics: md} }

// Signal returns the request's signal.
func (r Request) Signal() Signal { return r.signal }

// Items counts the spans, log records or metric data points.
func (r Request) Items() int {
	switch r.signal {
	case Traces:
		return r.traces.SpanCount()
	case Logs:
		return r.logs.LogRecordCount()
	default:
		return r.metrics.DataPointCount()
	}
}

// Size is the request's size in OTLP protobuf, the unit of the export queue's bound.
func (r Request) Size() int {
	switch r.signal {
	case Traces:
		return (&ptrace.ProtoMarshaler{}).TracesSize(r.traces)
	case Logs:
		return (&plog.ProtoMarshaler{}).LogsSize(r.logs)
	default:
		return (&pmetric.ProtoMarshaler{}).MetricsSize(r.metrics)
	}
}

// Marshal encodes the request as an OTLP export request body. TracesData, LogsData and
// MetricsData have the same fields, with the same numbers and JSON names, as the export
// requests, so pdata's marshalers write export requests as they are.
func (r Request) Marshal(asJSON bool) ([]byte, error) {
	switch {
	case r.signal == Traces && asJSON:
		return (&ptrace.JSONMarshaler{}).MarshalTraces(r.traces)
	case r.signal == Traces:
		return (&ptrace.ProtoMarshaler{}).MarshalTraces(r.traces)
	case r.signal == Logs && asJSON:
		return (&plog.JSONMarshaler{}).MarshalLogs(r.logs)
	case r.signal == Logs:
		return (&plog.ProtoMarshaler{}).MarshalLogs(r.logs)
	case asJSON:
		return (&pmetric.JSONMarshaler{}).MarshalMetrics(r.metrics)
	default:
		return (&pmetric.ProtoMarshaler{}).MarshalMetrics(r.metrics)
	}
}

// partialSuccess is the partial_success of an export response: items the backend refused
// although it accepted the request.
type partialSuccess struct {
	rejected int64
	message  string
}

// decodeResponse reads an export response body. An empty body is a full success.
func (r Request) decodeResponse(body []byte, asJSON bool) (partialSuccess, error) {
	var ps partialSuccess
	if len(body) == 0 {
		return ps, nil
	}
	if asJSON {
		var resp struct {
			PartialSuccess map[string]json.RawMessage `json:"partialSuccess"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return ps, fmt.Errorf("reading the export response: %w", err)
		}
		if raw, ok := resp.PartialSuccess[signalInfo[r.signal].rejected]; ok {
			n, _ := jsontext.ParseInt(strings.Trim(string(raw), `"`))
			ps.rejected = n
		}
		if raw, ok := resp.PartialSuccess["errorMessage"]; ok {
			_ = json.Unmarshal(raw, &ps.message)
		}
		return ps, nil
	}
	// ExportXServiceResponse { ExportXPartialSuccess partial_success = 1; } and
	// ExportXPartialSuccess { int64 rejected_<items> = 1; string error_message = 2; }.
	// An unreadable answer reads as a full success: the backend did take the request.
	partial := pbwire.Bytes(body, 1)
	ps.rejected = int64(pbwire.Uint(partial, 1))
	ps.message = string(pbwire.Bytes(partial, 2))
	return ps, nil
}
