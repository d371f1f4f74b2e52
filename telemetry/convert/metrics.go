package convert

import (
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// ExportCount is how many items of a signal met an outcome at an exporter: "exported",
// or the reason they were dropped.
type ExportCount struct {
	Exporter, Signal, Outcome string
	Items                     uint64
}

// Self is the extension's own counters, as totals since it started.
type Self struct {
	// Telemetry is what the listener and the buffer counted.
	Telemetry telemetry.Counts
	// Exports are the exporters' totals, by exporter, signal and outcome.
	Exports []ExportCount
}

// Bucket bounds: durations in seconds up to Lambda's 15-minute limit, memory in bytes over
// the sizes Lambda offers (128 MB to 10 GB).
var (
	durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 900}
	memoryBounds   = []float64{128 * mib, 256 * mib, 512 * mib, 1024 * mib, 1536 * mib, 2048 * mib, 3072 * mib, 4096 * mib, 6144 * mib, 8192 * mib, 10240 * mib}
)

// counter is a running total and the total at the last emit.
type counter struct{ total, reported uint64 }

func (c *counter) add(n uint64) { c.total += n }

// histState is a histogram's accumulation.
type histState struct {
	counts   []uint64
	count    uint64
	sum      float64
	min, max float64
}

func (h *histState) record(bounds []float64, v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(bounds)+1)
	}
	i, _ := slices.BinarySearch(bounds, v)
	h.counts[i]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
}

// histogram keeps its totals since start and since the last emit, for the two temporalities.
type histogram struct {
	bounds     []float64
	all, since histState
}

func (h *histogram) record(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	h.all.record(h.bounds, v)
	h.since.record(h.bounds, v)
}

// metrics holds the instruments.
type metrics struct {
	temporality Temporality
	start       time.Time // of the current points: the extension's start, or the last emit for delta

	invocations, coldstarts, errors, timeouts, outOfMemory counter
	logsDropped, logsDroppedBytes                          counter
	invokeDuration, initDurations, memUsage, billed        histogram
	maxMemoryUsed                                          int64
	maxMemoryChanged                                       bool
	self                                                   Self // at the last emit
	initFromReport                                         bool

	// sums and hists list the instruments above with their names, in emit order.
	sums  []instrument[counter]
	hists []instrument[histogram]
}

// instrument is a counter or histogram with its name, unit and description.
type instrument[T any] struct {
	name, unit, desc string
	v                *T
}

func newMetrics(t Temporality, start time.Time) *metrics {
	m := &metrics{
		temporality:    t,
		start:          start,
		invokeDuration: histogram{bounds: durationBounds},
		initDurations:  histogram{bounds: durationBounds},
		memUsage:       histogram{bounds: memoryBounds},
		billed:         histogram{bounds: durationBounds},
	}
	m.sums = []instrument[counter]{
		{"faas.invocations", "{invocation}", "Number of invocations.", &m.invocations},
		{"faas.coldstarts", "{coldstart}", "Number of invocation cold starts.", &m.coldstarts},
		{"faas.errors", "{error}", "Number of invocation errors.", &m.errors},
		{"faas.timeouts", "{timeout}", "Number of invocation timeouts.", &m.timeouts},
		{"aws.lambda.out_of_memory", "{invocation}", "Number of invocations that ran out of memory.", &m.outOfMemory},
		{"aws.lambda.logs_dropped", "{record}", "Log records the platform dropped before delivering them (platform.logsDropped).", &m.logsDropped},
		{"aws.lambda.logs_dropped_bytes", "By", "Bytes of log records the platform dropped before delivering them.", &m.logsDroppedBytes},
	}
	m.hists = []instrument[histogram]{
		{"faas.invoke_duration", "s", "Duration of invocations, as the platform reports it.", &m.invokeDuration},
		{"faas.init_duration", "s", "Duration of the function's initialization, such as a cold start.", &m.initDurations},
		{"faas.mem_usage", "By", "Maximum memory used per invocation.", &m.memUsage},
		{"aws.lambda.billed_duration", "s", "Billed duration of invocations.", &m.billed},
	}
	return m
}

// initDuration records an init or restore phase's duration, once per phase.
func (m *metrics) initDuration(p *phase, ms float64) {
	if p.countedInit {
		return
	}
	p.countedInit = true
	m.initDurations.record(ms / 1000)
}

// report records an invocation's report. Its init duration counts only when no init phase
// was seen to count it (the extension missed the init events).
func (m *metrics) report(r *telemetry.Report, env *phase) {
	mt := r.Metrics
	m.invokeDuration.record(mt.DurationMs / 1000)
	m.billed.record(float64(mt.BilledDurationMs) / 1000)
	if mt.MaxMemoryUsedMB > 0 {
		m.memUsage.record(float64(mt.MaxMemoryUsedMB) * mib)
		m.maxMemoryUsed, m.maxMemoryChanged = int64(mt.MaxMemoryUsedMB)*mib, true
	}
	if mt.InitDurationMs > 0 {
		if env != nil {
			m.initDuration(env, mt.InitDurationMs)
		} else if !m.initFromReport {
			m.initFromReport = true
			m.initDurations.record(mt.InitDurationMs / 1000)
		}
	}
}

func (m *metrics) logsDroppedBy(records, bytes int64) {
	m.logsDropped.add(uint64(max(records, 0)))
	m.logsDroppedBytes.add(uint64(max(bytes, 0)))
}

// changed reports whether anything would be new in an emit.
func (m *metrics) changed(self Self) bool {
	if self.Telemetry != m.self.Telemetry || !slices.Equal(self.Exports, m.self.Exports) || m.maxMemoryChanged {
		return true
	}
	for _, c := range m.sums {
		if c.v.total != c.v.reported {
			return true
		}
	}
	for _, h := range m.hists {
		if h.v.since.count > 0 {
			return true
		}
	}
	return false
}

// labeled is one point of a counter: its total now and at the last emit, and its
// attributes.
type labeled struct {
	attrs        [][2]string
	total, prior uint64
}

// priorExport is x's total at the last emit.
func priorExport(before []ExportCount, x ExportCount) uint64 {
	for _, b := range before {
		if b.Exporter == x.Exporter && b.Signal == x.Signal && b.Outcome == x.Outcome {
			return b.Items
		}
	}
	return 0
}

// emit appends the metrics to out and marks them reported.
func (m *metrics) emit(out pmetric.MetricSlice, now time.Time, self Self) {
	e := emitter{out: out, start: stamp(m.start), end: stamp(now), temporality: m.temporality}
	for _, c := range m.sums {
		e.sum(c.name, c.unit, c.desc, labeled{total: c.v.total, prior: c.v.reported})
		c.v.reported = c.v.total
	}
	for _, h := range m.hists {
		st := &h.v.all
		if m.temporality == Delta {
			st = &h.v.since
		}
		e.histogram(h.name, h.unit, h.desc, h.v.bounds, st)
		h.v.since = histState{}
	}
	if m.maxMemoryChanged || m.temporality == Cumulative && m.maxMemoryUsed > 0 {
		dp := e.metric("aws.lambda.max_memory_used", "By", "Maximum memory used by the latest invocation.").SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(e.end)
		dp.SetIntValue(m.maxMemoryUsed)
		m.maxMemoryChanged = false
	}

	t, lt := self.Telemetry, m.self.Telemetry
	e.sum("lambda_otel.events.received", "{event}", "Telemetry API events the extension received.",
		labeled{total: t.Events, prior: lt.Events})
	var events, batches []labeled
	for _, r := range telemetry.DropReasons() {
		if t.Dropped[r] == 0 {
			continue
		}
		l := labeled{attrs: [][2]string{{"reason", r.String()}}, total: t.Dropped[r], prior: lt.Dropped[r]}
		if r.CountsBatches() {
			batches = append(batches, l)
		} else {
			events = append(events, l)
		}
	}
	e.sum("lambda_otel.events.dropped", "{event}", "Telemetry events the extension dropped, by reason.", events...)
	e.sum("lambda_otel.batches.dropped", "{batch}", "Telemetry API deliveries the extension could not read, by reason.", batches...)
	var received, refused, unread []labeled
	for _, sig := range telemetry.Signals() {
		for _, o := range telemetry.ReceiveOutcomes() {
			n := t.Received[sig][o]
			if n == 0 {
				continue
			}
			l := labeled{attrs: [][2]string{{"signal", sig.String()}}, total: n, prior: lt.Received[sig][o]}
			if o == telemetry.ReceiveAccepted {
				received = append(received, l)
			} else {
				l.attrs = append(l.attrs, [2]string{"reason", o.String()})
				refused = append(refused, l)
			}
		}
	}
	for _, f := range telemetry.ReceiveFailures() {
		if n := t.ReceiveFailed[f]; n > 0 {
			unread = append(unread, labeled{attrs: [][2]string{{"reason", f.String()}}, total: n, prior: lt.ReceiveFailed[f]})
		}
	}
	e.sum("lambda_otel.received", "{item}", "Items the function's OpenTelemetry SDK sent to the local OTLP receiver, by signal.", received...)
	e.sum("lambda_otel.received.refused", "{item}", "Items the local OTLP receiver refused, by signal and reason: invalid ones for good (told to the sender as a partial success), buffer_full ones for the sender to retry.", refused...)
	e.sum("lambda_otel.receiver.requests.failed", "{request}", "Requests the local OTLP receiver could not read, by reason.", unread...)
	var exported, failed []labeled
	for _, x := range self.Exports {
		l := labeled{attrs: [][2]string{{"exporter", x.Exporter}, {"signal", x.Signal}}, total: x.Items, prior: priorExport(m.self.Exports, x)}
		if x.Outcome == "exported" {
			exported = append(exported, l)
		} else {
			l.attrs = append(l.attrs, [2]string{"reason", x.Outcome})
			failed = append(failed, l)
		}
	}
	e.sum("lambda_otel.exported", "{item}", "Items the backend accepted, by exporter and signal.", exported...)
	e.sum("lambda_otel.export.failed", "{item}", "Items that could not be delivered, by exporter, signal and reason.", failed...)
	m.self = self
	if m.temporality == Delta {
		m.start = now
	}
}

// emitter writes points with the temporality's values and timestamps.
type emitter struct {
	out         pmetric.MetricSlice
	start, end  pcommon.Timestamp
	temporality Temporality
}

func (e *emitter) aggregation() pmetric.AggregationTemporality {
	if e.temporality == Delta {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

// sum appends a monotonic sum with a point per label: the total, or for delta its growth
// since the last emit, leaving out points that did not grow. A sum with no point is left
// out.
func (e *emitter) sum(name, unit, desc string, points ...labeled) {
	var dps pmetric.NumberDataPointSlice
	created := false
	for _, p := range points {
		v := p.total
		if e.temporality == Delta {
			if p.total == p.prior {
				continue
			}
			v = p.total - p.prior
		}
		if !created {
			created = true
			s := e.metric(name, unit, desc).SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(e.aggregation())
			dps = s.DataPoints()
		}
		dp := dps.AppendEmpty()
		dp.SetStartTimestamp(e.start)
		dp.SetTimestamp(e.end)
		dp.SetIntValue(int64(min(v, math.MaxInt64)))
		for _, a := range p.attrs {
			dp.Attributes().PutStr(a[0], a[1])
		}
	}
}

// histogram appends a histogram of st unless it is empty.
func (e *emitter) histogram(name, unit, desc string, bounds []float64, st *histState) {
	if st.count == 0 {
		return
	}
	h := e.metric(name, unit, desc).SetEmptyHistogram()
	h.SetAggregationTemporality(e.aggregation())
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(e.start)
	dp.SetTimestamp(e.end)
	dp.SetCount(st.count)
	dp.SetSum(st.sum)
	dp.SetMin(st.min)
	dp.SetMax(st.max)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(st.counts)
}

func (e *emitter) metric(name, unit, desc string) pmetric.Metric {
	m := e.out.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	return m
}
