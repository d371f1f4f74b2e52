package sink

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// total is one metric's data points reduced to what a reader wants at the end of a run.
type total struct {
	name, kind, unit string
	// series holds, per attribute set (resource, scope and point attributes), the latest
	// point of a cumulative metric or a gauge, or the delta points added up.
	series map[string]point
	// noSum is set when a distribution point came without its sum, which is optional.
	noSum bool
}

// point is a number (value) or a distribution (count and sum) at a time.
type point struct {
	at         pcommon.Timestamp
	value, sum float64
	count      uint64
}

// metricTotals reduces the metrics to one total per name, sorted by name.
func metricTotals(md pmetric.Metrics) []*total {
	byName := map[[2]string]*total{}
	var totals []*total
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			scope := attrKey(rm.Resource().Attributes()) + "\x1d" + sm.Scope().Name() + "\x1d"
			for _, m := range sm.Metrics().All() {
				kind := kindName(m.Type())
				t := byName[[2]string{m.Name(), kind}]
				if t == nil {
					t = &total{name: m.Name(), kind: kind, unit: m.Unit(), series: map[string]point{}}
					byName[[2]string{m.Name(), kind}] = t
					totals = append(totals, t)
				}
				t.addMetric(m, scope)
			}
		}
	}
	slices.SortFunc(totals, func(a, b *total) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind)) })
	return totals
}

func kindName(t pmetric.MetricType) string {
	switch t {
	case pmetric.MetricTypeSum:
		return "sum"
	case pmetric.MetricTypeGauge:
		return "gauge"
	case pmetric.MetricTypeHistogram:
		return "histogram"
	case pmetric.MetricTypeExponentialHistogram:
		return "exp-histo"
	case pmetric.MetricTypeSummary:
		return "summary"
	}
	return "empty"
}

// addMetric adds the data points of m, whose resource and scope scope identifies.
func (t *total) addMetric(m pmetric.Metric, scope string) {
	const delta = pmetric.AggregationTemporalityDelta
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			t.add(scope+attrKey(dp.Attributes()), numberPoint(dp), m.Sum().AggregationTemporality() == delta)
		}
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			t.add(scope+attrKey(dp.Attributes()), numberPoint(dp), false)
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			t.noSum = t.noSum || !dp.HasSum()
			t.add(scope+attrKey(dp.Attributes()), point{at: dp.Timestamp(), count: dp.Count(), sum: dp.Sum()}, m.Histogram().AggregationTemporality() == delta)
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			t.noSum = t.noSum || !dp.HasSum()
			t.add(scope+attrKey(dp.Attributes()), point{at: dp.Timestamp(), count: dp.Count(), sum: dp.Sum()}, m.ExponentialHistogram().AggregationTemporality() == delta)
		}
	case pmetric.MetricTypeSummary:
		// Summaries are cumulative by definition.
		for _, dp := range m.Summary().DataPoints().All() {
			t.add(scope+attrKey(dp.Attributes()), point{at: dp.Timestamp(), count: dp.Count(), sum: dp.Sum()}, false)
		}
	}
}

// add folds p into its series: a delta point adds to it, a cumulative or gauge point
// replaces it unless older.
func (t *total) add(series string, p point, delta bool) {
	old, seen := t.series[series]
	switch {
	case delta && seen:
		p = point{at: max(old.at, p.at), value: old.value + p.value, sum: old.sum + p.sum, count: old.count + p.count}
	case seen && p.at < old.at:
		p = old
	}
	t.series[series] = p
}

// value is the total as text: a gauge's latest value, a sum's total over its series, or a
// distribution's count and sum.
func (t *total) value() string {
	keys := slices.Sorted(maps.Keys(t.series))
	var all point
	for _, k := range keys {
		p := t.series[k]
		if t.kind == "gauge" {
			if p.at >= all.at {
				all = p
			}
			continue
		}
		all.value += p.value
		all.sum += p.sum
		all.count += p.count
	}
	unit := ""
	if t.unit != "" && t.unit != "1" {
		unit = " " + t.unit
	}
	var s string
	switch t.kind {
	case "sum", "gauge":
		s = number(all.value) + unit
	case "empty":
		s = "-"
	default:
		s = fmt.Sprintf("count %d", all.count)
		if !t.noSum {
			s += "  sum " + number(all.sum) + unit
		}
	}
	switch {
	case len(keys) > 1 && t.kind == "gauge":
		s += fmt.Sprintf("  (latest of %d series)", len(keys))
	case len(keys) > 1:
		s += fmt.Sprintf("  (%d series)", len(keys))
	}
	return s
}

func numberPoint(dp pmetric.NumberDataPoint) point {
	p := point{at: dp.Timestamp(), value: dp.DoubleValue()}
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		p.value = float64(dp.IntValue())
	}
	return p
}

// number writes whole numbers in full and others to six significant digits, which hides
// the noise of adding up floating-point values.
func number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// attrKey identifies an attribute set, whatever the order of its attributes.
func attrKey(m pcommon.Map) string {
	pairs := make([]string, 0, m.Len())
	for k, v := range m.All() {
		pairs = append(pairs, k+"\x1f"+v.AsString())
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "\x1e")
}
