package exporters

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// File appends each request as one line of OTLP JSON, the format the collector's file
// exporter and receiver use, so the output can be replayed into any OTLP pipeline.
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// NewFile opens (creating or appending to) path.
func NewFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the export file: %w", err)
	}
	return &File{f: f, path: path}, nil
}

// Name is "file".
func (e *File) Name() string { return NameFile }

// Export writes r as one line.
func (e *File) Export(_ context.Context, r Request) Result {
	b, err := r.Marshal(true)
	if err != nil {
		return Result{Rejected: r.Items(), Err: fmt.Errorf("encoding %s: %w", r.Signal(), err)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.f.Write(append(b, '\n')); err != nil {
		return Result{Retryable: true, Err: fmt.Errorf("writing %s to %s: %w", r.Signal(), e.path, err)}
	}
	return Result{Accepted: r.Items()}
}

// Close closes the file.
func (e *File) Close(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.f.Close()
}

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
