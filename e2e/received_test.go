package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

// received is what the backend got, reduced to what the accounting compares.
type received struct {
	spans []span
	logs  int
	// logKeys counts the log records by identity (event type, time and body), to find
	// duplicates.
	logKeys map[string]int
	// metrics holds the final value of each series: the latest point of each environment
	// (faas.instance), summed over the environments. A series is "name" or
	// "name{k=v,…}" with its point attributes sorted.
	metrics map[string]float64
	// points counts the metric data points received.
	points int
	// byInvocation counts the log records by faas.invocation_id.
	byInvocation map[string]int
}

type span struct {
	name, invocationID, spanID, traceID string
	failed                              bool
	statusMessage                       string
}

func receive(rcv *otlptest.Receiver) received {
	traces, logs, metrics := rcv.Received()
	r := received{logKeys: map[string]int{}, metrics: map[string]float64{}, byInvocation: map[string]int{}}
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					id, _ := sp.Attributes().Get("faas.invocation_id")
					r.spans = append(r.spans, span{
						name: sp.Name(), invocationID: id.Str(), spanID: sp.SpanID().String(), traceID: sp.TraceID().String(),
						failed: sp.Status().Code() == ptrace.StatusCodeError, statusMessage: sp.Status().Message(),
					})
				}
			}
		}
	}
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					r.logs++
					if id, ok := lr.Attributes().Get("faas.invocation_id"); ok {
						r.byInvocation[id.Str()]++
					}
					typ, _ := lr.Attributes().Get("aws.lambda.event.type")
					r.logKeys[fmt.Sprintf("%s|%d|%d|%s", typ.Str(), lr.Timestamp(), lr.ObservedTimestamp(), lr.Body().AsString())]++
				}
			}
		}
	}
	type latest struct {
		at    pcommon.Timestamp
		value float64
	}
	last := map[string]latest{} // by instance and series
	for _, md := range metrics {
		r.points += md.DataPointCount()
		for _, rm := range md.ResourceMetrics().All() {
			inst, _ := rm.Resource().Attributes().Get("faas.instance")
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					keep := func(attrs pcommon.Map, at pcommon.Timestamp, v float64) {
						k := inst.Str() + "|" + series(m.Name(), attrs)
						if l, ok := last[k]; !ok || at >= l.at {
							last[k] = latest{at, v}
						}
					}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						for _, p := range m.Sum().DataPoints().All() {
							keep(p.Attributes(), p.Timestamp(), value(p))
						}
					case pmetric.MetricTypeGauge:
						for _, p := range m.Gauge().DataPoints().All() {
							keep(p.Attributes(), p.Timestamp(), value(p))
						}
					case pmetric.MetricTypeHistogram:
						for _, p := range m.Histogram().DataPoints().All() {
							keep(p.Attributes(), p.Timestamp(), float64(p.Count()))
						}
					}
				}
			}
		}
	}
	for k, l := range last {
		_, s, _ := strings.Cut(k, "|")
		r.metrics[s] += l.value
	}
	return r
}

func value(p pmetric.NumberDataPoint) float64 {
	if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(p.IntValue())
	}
	return p.DoubleValue()
}

func series(name string, attrs pcommon.Map) string {
	if attrs.Len() == 0 {
		return name
	}
	var kv []string
	for k, v := range attrs.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	slices.Sort(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// metricSum adds the final values of every series of name whose attributes include all of
// with ("k=v").
func (r received) metricSum(name string, with ...string) float64 {
	var sum float64
	for _, s := range slices.Sorted(maps.Keys(r.metrics)) {
		n, attrs, _ := strings.Cut(s, "{")
		if n != name {
			continue
		}
		ok := true
		for _, w := range with {
			ok = ok && slices.Contains(strings.Split(strings.TrimSuffix(attrs, "}"), ","), w)
		}
		if ok {
			sum += r.metrics[s]
		}
	}
	return sum
}

// duplicates counts the log records and spans received more than once.
func (r received) duplicates() (logs, spans int) {
	for _, n := range r.logKeys {
		logs += n - 1
	}
	seen := map[string]bool{}
	for _, s := range r.spans {
		if seen[s.spanID] {
			spans++
		}
		seen[s.spanID] = true
	}
	return logs, spans
}
