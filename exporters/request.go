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

// maxRequestBytes bounds one export request, in OTLP protobuf. gRPC servers refuse a
// received message over 4 MiB by default (the Collector's OTLP receiver among them), as a
// whole and for good, and a log flood converts to far more than that in one flush. Half the
// limit leaves room for framing and for http/json, which encodes larger.
const maxRequestBytes = 2 << 20

// framing is an allowance, per nested message, for its field tag and length prefix, which
// the sizes of the pieces a request is cut into do not include.
const framing = 8

// split cuts r into requests of at most max bytes of protobuf, at item boundaries (spans,
// log records; whole metrics for metrics), each piece under a copy of its resource and
// scope. An item larger than max travels alone. A request within max is returned as is;
// from a larger one the items are moved, not copied, since a flood is what gets split and
// a copy would double its memory: r must not be used afterwards.
func (r Request) split(max int) []Request {
	if r.Size() <= max {
		return []Request{r}
	}
	var out []Request
	switch r.signal {
	case Traces:
		for _, td := range splitTraces(r.traces, max) {
			out = append(out, TracesRequest(td))
		}
	case Logs:
		for _, ld := range splitLogs(r.logs, max) {
			out = append(out, LogsRequest(ld))
		}
	default:
		for _, md := range splitMetrics(r.metrics, max) {
			out = append(out, MetricsRequest(md))
		}
	}
	return out
}

// chunker tracks the piece being filled while a request is cut up: its size, and whether
// the current resource and scope have been opened in it.
type chunker struct {
	max, size, items   int
	resOpen, scopeOpen bool
}

// fits reports whether an item of n bytes, under resource and scope headers of res and
// scope bytes, still fits the piece; when not, the caller starts a new piece. A piece
// always takes its first item.
func (c *chunker) fits(n, res, scope int) bool {
	need := n
	if !c.scopeOpen {
		need += scope
	}
	if !c.resOpen {
		need += res
	}
	return c.items == 0 || c.size+need <= c.max
}

// add counts an item of n bytes into the piece, with the headers it opens.
func (c *chunker) add(n, res, scope int) {
	if !c.resOpen {
		c.size += res
	}
	if !c.scopeOpen {
		c.size += scope
	}
	c.size += n
	c.items++
	c.resOpen, c.scopeOpen = true, true
}

// restart starts a new, empty piece.
func (c *chunker) restart() { *c = chunker{max: c.max} }

func splitTraces(td ptrace.Traces, max int) []ptrace.Traces {
	m := &ptrace.ProtoMarshaler{}
	c := chunker{max: max}
	var out []ptrace.Traces
	var rs ptrace.ResourceSpans
	var ss ptrace.ScopeSpans
	for _, srcRS := range td.ResourceSpans().All() {
		head := ptrace.NewResourceSpans()
		srcRS.Resource().CopyTo(head.Resource())
		head.SetSchemaUrl(srcRS.SchemaUrl())
		resSize := m.ResourceSpansSize(head) + framing
		c.resOpen = false
		for _, srcSS := range srcRS.ScopeSpans().All() {
			shead := ptrace.NewScopeSpans()
			srcSS.Scope().CopyTo(shead.Scope())
			shead.SetSchemaUrl(srcSS.SchemaUrl())
			scopeSize := m.ScopeSpansSize(shead) + framing
			c.scopeOpen = false
			for _, sp := range srcSS.Spans().All() {
				n := m.SpanSize(sp) + framing
				if len(out) == 0 || !c.fits(n, resSize, scopeSize) {
					out = append(out, ptrace.NewTraces())
					c.restart()
				}
				if !c.resOpen {
					rs = out[len(out)-1].ResourceSpans().AppendEmpty()
					head.CopyTo(rs)
				}
				if !c.scopeOpen {
					ss = rs.ScopeSpans().AppendEmpty()
					shead.CopyTo(ss)
				}
				c.add(n, resSize, scopeSize)
				sp.MoveTo(ss.Spans().AppendEmpty())
			}
		}
	}
	return out
}

func splitLogs(ld plog.Logs, max int) []plog.Logs {
	m := &plog.ProtoMarshaler{}
	c := chunker{max: max}
	var out []plog.Logs
	var rl plog.ResourceLogs
	var sl plog.ScopeLogs
	for _, srcRL := range ld.ResourceLogs().All() {
		head := plog.NewResourceLogs()
		srcRL.Resource().CopyTo(head.Resource())
		head.SetSchemaUrl(srcRL.SchemaUrl())
		resSize := m.ResourceLogsSize(head) + framing
		c.resOpen = false
		for _, srcSL := range srcRL.ScopeLogs().All() {
			shead := plog.NewScopeLogs()
			srcSL.Scope().CopyTo(shead.Scope())
			shead.SetSchemaUrl(srcSL.SchemaUrl())
			scopeSize := m.ScopeLogsSize(shead) + framing
			c.scopeOpen = false
			for _, lr := range srcSL.LogRecords().All() {
				n := m.LogRecordSize(lr) + framing
				if len(out) == 0 || !c.fits(n, resSize, scopeSize) {
					out = append(out, plog.NewLogs())
					c.restart()
				}
				if !c.resOpen {
					rl = out[len(out)-1].ResourceLogs().AppendEmpty()
					head.CopyTo(rl)
				}
				if !c.scopeOpen {
					sl = rl.ScopeLogs().AppendEmpty()
					shead.CopyTo(sl)
				}
				c.add(n, resSize, scopeSize)
				lr.MoveTo(sl.LogRecords().AppendEmpty())
			}
		}
	}
	return out
}

func splitMetrics(md pmetric.Metrics, max int) []pmetric.Metrics {
	m := &pmetric.ProtoMarshaler{}
	c := chunker{max: max}
	var out []pmetric.Metrics
	var rm pmetric.ResourceMetrics
	var sm pmetric.ScopeMetrics
	for _, srcRM := range md.ResourceMetrics().All() {
		head := pmetric.NewResourceMetrics()
		srcRM.Resource().CopyTo(head.Resource())
		head.SetSchemaUrl(srcRM.SchemaUrl())
		resSize := m.ResourceMetricsSize(head) + framing
		c.resOpen = false
		for _, srcSM := range srcRM.ScopeMetrics().All() {
			shead := pmetric.NewScopeMetrics()
			srcSM.Scope().CopyTo(shead.Scope())
			shead.SetSchemaUrl(srcSM.SchemaUrl())
			scopeSize := m.ScopeMetricsSize(shead) + framing
			c.scopeOpen = false
			for _, metric := range srcSM.Metrics().All() {
				n := m.MetricSize(metric) + framing
				if len(out) == 0 || !c.fits(n, resSize, scopeSize) {
					out = append(out, pmetric.NewMetrics())
					c.restart()
				}
				if !c.resOpen {
					rm = out[len(out)-1].ResourceMetrics().AppendEmpty()
					head.CopyTo(rm)
				}
				if !c.scopeOpen {
					sm = rm.ScopeMetrics().AppendEmpty()
					shead.CopyTo(sm)
				}
				c.add(n, resSize, scopeSize)
				metric.MoveTo(sm.Metrics().AppendEmpty())
			}
		}
	}
	return out
}

// merge returns one request with the items of rs, all of one signal, in their order. The
// requests themselves are left as they are: other exporters may still hold them.
func merge(rs []Request) Request {
	switch rs[0].signal {
	case Traces:
		td := ptrace.NewTraces()
		for _, r := range rs {
			for _, x := range r.traces.ResourceSpans().All() {
				x.CopyTo(td.ResourceSpans().AppendEmpty())
			}
		}
		return TracesRequest(td)
	case Logs:
		ld := plog.NewLogs()
		for _, r := range rs {
			for _, x := range r.logs.ResourceLogs().All() {
				x.CopyTo(ld.ResourceLogs().AppendEmpty())
			}
		}
		return LogsRequest(ld)
	default:
		md := pmetric.NewMetrics()
		for _, r := range rs {
			for _, x := range r.metrics.ResourceMetrics().All() {
				x.CopyTo(md.ResourceMetrics().AppendEmpty())
			}
		}
		return MetricsRequest(md)
	}
}
