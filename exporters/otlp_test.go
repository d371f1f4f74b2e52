package exporters

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

var sampleTime = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// sample returns one request of each signal with content worth comparing.
func sample() [numSignals]Request {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	for i := range 3 {
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetName("invoke")
		s.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		s.SetSpanID(pcommon.SpanID{4, 5, byte(i)})
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(sampleTime))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(sampleTime.Add(time.Second)))
		s.Attributes().PutStr("faas.invocation_id", "req")
		s.Status().SetCode(ptrace.StatusCodeError)
		s.Status().SetMessage("Runtime.ExitError")
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	for i := range 5 {
		r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		r.Body().SetStr("line é " + string(rune('a'+i)))
		r.SetSeverityNumber(plog.SeverityNumberWarn)
		r.SetTimestamp(pcommon.NewTimestampFromTime(sampleTime))
		r.Attributes().PutInt("n", int64(i))
	}
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("faas.invocations")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 2 {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(10 + i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(sampleTime))
	}
	return [numSignals]Request{TracesRequest(td), LogsRequest(ld), MetricsRequest(md)}
}

func targets(p Protocol, rcv *otlptest.Receiver, gzip bool) [numSignals]Target {
	var ts [numSignals]Target
	for _, s := range Signals {
		t := Target{Protocol: p, Gzip: gzip, Timeout: 5 * time.Second, Headers: map[string]string{"Authorization": "Bearer secret"}}
		if p == GRPC {
			t.URL = "http://" + rcv.GRPCEndpoint
		} else {
			t.URL = rcv.HTTPEndpoint + signalInfo[s].path
		}
		ts[s] = t
	}
	return ts
}

// TestOTLPAgainstTheCollectorReceiver sends each signal with each protocol, with and
// without gzip, to the collector's own receiver and checks that what arrived equals what
// was sent.
func TestOTLPAgainstTheCollectorReceiver(t *testing.T) {
	for _, p := range []Protocol{HTTPProtobuf, HTTPJSON, GRPC} {
		for _, gz := range []bool{false, true} {
			name := string(p)
			if gz {
				name += "+gzip"
			}
			t.Run(name, func(t *testing.T) {
				rcv := otlptest.Start(t)
				exp := NewOTLP(targets(p, rcv, gz))
				defer exp.Close(context.Background())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				reqs := sample()
				for _, r := range reqs {
					res := exp.Export(ctx, r)
					if res.Err != nil || res.Accepted != r.Items() || res.Rejected != 0 {
						t.Fatalf("%s: %+v", r.Signal(), res)
					}
				}
				traces, logs, metrics := rcv.Received()
				if len(traces) != 1 || len(logs) != 1 || len(metrics) != 1 {
					t.Fatalf("received %d, %d, %d requests; want one of each", len(traces), len(logs), len(metrics))
				}
				same := func(what string, got, want []byte, err1, err2 error) {
					if err1 != nil || err2 != nil || string(got) != string(want) {
						t.Errorf("%s differ:\n got  %s\n want %s", what, got, want)
					}
				}
				var jt ptrace.JSONMarshaler
				g, e1 := jt.MarshalTraces(traces[0])
				w, e2 := jt.MarshalTraces(reqs[Traces].traces)
				same("traces", g, w, e1, e2)
				var jl plog.JSONMarshaler
				g, e1 = jl.MarshalLogs(logs[0])
				w, e2 = jl.MarshalLogs(reqs[Logs].logs)
				same("logs", g, w, e1, e2)
				var jm pmetric.JSONMarshaler
				g, e1 = jm.MarshalMetrics(metrics[0])
				w, e2 = jm.MarshalMetrics(reqs[Metrics].metrics)
				same("metrics", g, w, e1, e2)
			})
		}
	}
}
