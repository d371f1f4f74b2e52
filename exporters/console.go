package exporters

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Console writes a one-line summary of each request, for a quick look at what the
// extension sends without a backend.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole writes to w (stderr in the extension).
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Name is "console".
func (e *Console) Name() string { return NameConsole }

// Export writes the summary.
func (e *Console) Export(_ context.Context, r Request) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := fmt.Fprintln(e.w, summarize(r)); err != nil {
		return Result{Retryable: true, Err: fmt.Errorf("writing the %s summary: %w", r.Signal(), err)}
	}
	return Result{Accepted: r.Items()}
}

// Close does nothing: the writer is not the console exporter's to close.
func (e *Console) Close(context.Context) error { return nil }

// summarize describes a request in one line: spans with status and duration, log records
// by severity, metrics with their values.
func summarize(r Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lambda-otel %s:", r.Signal())
	switch r.Signal() {
	case Traces:
		for _, rs := range r.traces.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					d := s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime())
					fmt.Fprintf(&b, " %s (%s, %.1f ms);", s.Name(), s.Status().Code(), float64(d)/float64(time.Millisecond))
				}
			}
		}
	case Logs:
		bySeverity := map[string]int{}
		for _, rl := range r.logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, l := range sl.LogRecords().All() {
					bySeverity[cmp.Or(l.SeverityText(), "-")]++
				}
			}
		}
		fmt.Fprintf(&b, " %d records", r.Items())
		for _, k := range slices.Sorted(maps.Keys(bySeverity)) {
			fmt.Fprintf(&b, " %s=%d", k, bySeverity[k])
		}
	case Metrics:
		for _, rm := range r.metrics.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					fmt.Fprintf(&b, " %s=%s", m.Name(), metricValue(m))
				}
			}
		}
	}
	return strings.TrimSuffix(b.String(), ";")
}

// metricValue is a sum's or gauge's total, or a histogram's count and sum.
func metricValue(m pmetric.Metric) string {
	var dps pmetric.NumberDataPointSlice
	switch m.Type() {
	case pmetric.MetricTypeSum:
		dps = m.Sum().DataPoints()
	case pmetric.MetricTypeGauge:
		dps = m.Gauge().DataPoints()
	case pmetric.MetricTypeHistogram:
		var n uint64
		var sum float64
		for _, dp := range m.Histogram().DataPoints().All() {
			n += dp.Count()
			sum += dp.Sum()
		}
		return fmt.Sprintf("%d(sum %g)", n, sum)
	default:
		return "?"
	}
	var total float64
	for _, dp := range dps.All() {
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			total += float64(dp.IntValue())
		} else {
			total += dp.DoubleValue()
		}
	}
	return strconv.FormatFloat(total, 'g', -1, 64)
}
