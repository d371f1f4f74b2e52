package sink

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/exporters"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden from the current output")

// TestReportGolden renders the fixture, sent as the extension would send it, and compares
// the report with testdata/report.golden.
func TestReportGolden(t *testing.T) {
	s := start(t, Options{})
	send(t, exporter(t, s, exporters.HTTPProtobuf, false), newFixture(t).requests())
	var b strings.Builder
	if err := s.WriteReport(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	path := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the golden report (go test -update writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestReportEmpty(t *testing.T) {
	var b strings.Builder
	if err := start(t, Options{}).WriteReport(&b); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "OTLP sink: nothing received\n"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
}

// TestParentCycle checks that spans naming each other as parents, which no root reaches,
// are each shown once rather than lost or followed forever.
func TestParentCycle(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, parent := range []byte{2, 1, 2} {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{9})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		s.SetParentSpanID(pcommon.SpanID{parent})
	}
	traces, _ := buildTraces(td, plog.NewLogs())
	seen := 0
	var count func(n *node)
	count = func(n *node) {
		seen++
		for _, e := range n.inner {
			count(e.span)
		}
	}
	for _, tr := range traces {
		for _, n := range tr.roots {
			count(n)
		}
	}
	if len(traces) != 1 || seen != 3 {
		t.Errorf("%d traces showing %d spans, want 1 showing 3", len(traces), seen)
	}
}

// TestMetricTotals checks how points reduce to a total: the latest cumulative point of
// each series, whatever the arrival order; delta points added up; a gauge's latest point;
// a distribution without its optional sum.
func TestMetricTotals(t *testing.T) {
	md := pmetric.NewMetrics()
	metrics := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	number := func(name string, kind pmetric.MetricType, temporality pmetric.AggregationTemporality, series string, at int, v float64) {
		m := metrics.AppendEmpty()
		m.SetName(name)
		m.SetUnit("1")
		var dp pmetric.NumberDataPoint
		if kind == pmetric.MetricTypeGauge {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		} else {
			m.SetEmptySum().SetAggregationTemporality(temporality)
			dp = m.Sum().DataPoints().AppendEmpty()
		}
		dp.Attributes().PutStr("series", series)
		dp.SetTimestamp(pcommon.Timestamp(at))
		dp.SetDoubleValue(v)
	}
	const sum, gauge = pmetric.MetricTypeSum, pmetric.MetricTypeGauge
	const cumulative, delta = pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta
	number("cumulative", sum, cumulative, "a", 2, 5)
	number("cumulative", sum, cumulative, "a", 1, 4)
	number("cumulative", sum, cumulative, "b", 1, 0.5)
	number("delta", sum, delta, "a", 1, 0.1)
	number("delta", sum, delta, "a", 2, 0.2)
	number("gauge", gauge, 0, "a", 3, 7)
	number("gauge", gauge, 0, "b", 2, 9)
	h := metrics.AppendEmpty()
	h.SetName("histogram")
	h.SetUnit("ms")
	h.SetEmptyHistogram().SetAggregationTemporality(delta)
	for range 2 {
		h.Histogram().DataPoints().AppendEmpty().SetCount(3)
	}

	var got []string
	for _, tot := range metricTotals(md) {
		got = append(got, tot.name+" "+tot.kind+" "+tot.value())
	}
	want := []string{
		"cumulative sum 5.5  (2 series)",
		"delta sum 0.3",
		"gauge gauge 7  (latest of 2 series)",
		"histogram histogram count 6",
	}
	if !slices.Equal(got, want) {
		t.Errorf("totals\n got  %q\n want %q", got, want)
	}
}

func TestTextHelpers(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{oneLine("a\r\nb\nc\td", 20), "a⏎b⏎c d"},
		{oneLine("caf\xe9", 20), "caf\uFFFD"},
		{oneLine("abcdefgh", 5), "abcd…"},
		{oneLine("éèêë", 4), "éèêë"},
		{number(3), "3"},
		{number(0.1 + 0.2), "0.3"},
		{number(1e20), "1e+20"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for n, want := range map[plog.SeverityNumber]string{0: "-", 1: "TRACE", 9: "INFO", 10: "INFO2", 17: "ERROR", 24: "FATAL4", 25: "-"} {
		lr := plog.NewLogRecord()
		lr.SetSeverityNumber(n)
		if got := severity(lr); got != want {
			t.Errorf("severity %d: %q, want %q", n, got, want)
		}
	}
}
