package sink

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Layout of the report, which must read well in a 100-column terminal.
const (
	width       = 100
	kindColumn  = 44 // where a span line's kind starts, past the tree and the name
	maxValue    = 40 // runes of an attribute value, event name or status message
	maxLogBody  = 120
	minSpanName = 12 // runes of a span name kept however deep the tree
	// durationAttr is the attribute the extension gives the duration of a phase it turns
	// into a span event.
	durationAttr = "aws.lambda.duration_ms"
)

// WriteReport renders everything received for a reader: each trace as a tree of spans
// holding their log records, the log records outside any received span, and one total
// per metric. The order depends only on the data (times, then ids), never on arrival
// timing.
func (s *Sink) WriteReport(w io.Writer) error {
	c, td, ld, md := s.snapshot()
	var b strings.Builder
	render(&b, c, td, ld, md)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the OTLP sink report: %w", err)
	}
	return nil
}

func render(b *strings.Builder, c Counts, td ptrace.Traces, ld plog.Logs, md pmetric.Metrics) {
	if c.Requests == 0 {
		b.WriteString("OTLP sink: nothing received\n")
		return
	}
	traces, loose := buildTraces(td, ld)
	fmt.Fprintf(b, "OTLP sink: %s, %s, %s, %s in %s\n", plural(len(traces), "trace"), plural(c.Spans, "span"),
		plural(c.LogRecords, "log record"), plural(c.DataPoints, "metric point"), plural(c.Requests, "request"))
	for _, t := range traces {
		fmt.Fprintf(b, "\ntrace %s  %s\n", t.id, clock(t.roots[0].span.StartTimestamp()))
		for i, n := range t.roots {
			writeSpan(b, n, "", i == len(t.roots)-1)
		}
	}
	if len(loose) > 0 {
		b.WriteString("\nlogs without a span\n")
		for _, lr := range loose {
			b.WriteString("  " + logText(lr) + "\n")
		}
	}
	if totals := metricTotals(md); len(totals) > 0 {
		b.WriteString("\nmetrics\n")
		for _, t := range totals {
			fmt.Fprintf(b, "  %-34s %-10s %s\n", t.name, t.kind, t.value())
		}
	}
}

// trace is one trace's spans as trees.
type trace struct {
	id    pcommon.TraceID
	roots []*node
}

// node is a span with what happened inside it.
type node struct {
	span  ptrace.Span
	inner []entry // child spans and log records, in time order
}

// entry is a child span (span set) or a log record.
type entry struct {
	at   pcommon.Timestamp
	span *node
	log  plog.LogRecord
}

type spanKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// buildTraces arranges the spans as trees, puts each log record under its span, and
// returns the traces in time order with the log records that belong to no received span.
func buildTraces(td ptrace.Traces, ld plog.Logs) ([]trace, []plog.LogRecord) {
	var nodes []*node
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				nodes = append(nodes, &node{span: sp})
			}
		}
	}
	slices.SortStableFunc(nodes, byStart)
	byKey := map[spanKey]*node{}
	for _, n := range nodes {
		k := spanKey{n.span.TraceID(), n.span.SpanID()}
		if _, dup := byKey[k]; !dup {
			byKey[k] = n
		}
	}
	roots := link(nodes, byKey)

	var loose []plog.LogRecord
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if n := byKey[spanKey{lr.TraceID(), lr.SpanID()}]; n != nil && !lr.SpanID().IsEmpty() {
					n.inner = append(n.inner, entry{at: orderTime(lr), log: lr})
				} else {
					loose = append(loose, lr)
				}
			}
		}
	}
	for _, n := range nodes {
		slices.SortStableFunc(n.inner, func(a, b entry) int { return cmp.Compare(a.at, b.at) })
	}
	slices.SortStableFunc(loose, func(a, b plog.LogRecord) int { return cmp.Compare(orderTime(a), orderTime(b)) })

	var traces []trace
	index := map[pcommon.TraceID]int{}
	for _, n := range roots {
		id := n.span.TraceID()
		i, ok := index[id]
		if !ok {
			i = len(traces)
			index[id] = i
			traces = append(traces, trace{id: id})
		}
		traces[i].roots = append(traces[i].roots, n)
	}
	slices.SortFunc(traces, func(a, b trace) int {
		return cmp.Or(byStart(a.roots[0], b.roots[0]), bytes.Compare(a.id[:], b.id[:]))
	})
	return traces, loose
}

// link makes each span a child of its parent and returns the roots, sorted as nodes are.
// A span whose parent was not received is a root: it may come from a caller's trace.
func link(nodes []*node, byKey map[spanKey]*node) []*node {
	children := map[*node][]*node{}
	var roots []*node
	for _, n := range nodes {
		parent := n.span.ParentSpanID()
		if p := byKey[spanKey{n.span.TraceID(), parent}]; p != nil && p != n && !parent.IsEmpty() {
			children[p] = append(children[p], n)
		} else {
			roots = append(roots, n)
		}
	}
	placed := map[*node]bool{}
	var place func(n *node)
	place = func(n *node) {
		placed[n] = true
		for _, c := range children[n] {
			if !placed[c] {
				n.inner = append(n.inner, entry{at: c.span.StartTimestamp(), span: c})
				place(c)
			}
		}
	}
	for _, n := range roots {
		place(n)
	}
	// Spans whose parents form a cycle reach no root; they are shown as roots rather than lost.
	for _, n := range nodes {
		if !placed[n] {
			roots = append(roots, n)
			place(n)
		}
	}
	slices.SortStableFunc(roots, byStart)
	return roots
}

// byStart orders spans by start time, then span id.
func byStart(a, b *node) int {
	ida, idb := a.span.SpanID(), b.span.SpanID()
	return cmp.Or(cmp.Compare(a.span.StartTimestamp(), b.span.StartTimestamp()), bytes.Compare(ida[:], idb[:]))
}

// writeSpan writes a span, its attributes and events, and then its subtree, below prefix
// drawn by the levels above.
func writeSpan(b *strings.Builder, n *node, prefix string, last bool) {
	branch, indent := "├─ ", "│  "
	if last {
		branch, indent = "└─ ", "   "
	}
	sp := n.span
	head := prefix + branch
	nameWidth := max(kindColumn-1-utf8.RuneCountInString(head), minSpanName)
	status := sp.Status().Code().String()
	if msg := sp.Status().Message(); msg != "" {
		status += " " + oneLine(msg, maxValue)
	}
	fmt.Fprintf(b, "%s%-*s %-8s %8.2f ms  %s\n", head, nameWidth, oneLine(sp.Name(), nameWidth), sp.Kind(),
		millis(sp.StartTimestamp(), sp.EndTimestamp()), status)

	inner := prefix + indent
	detail := inner + "   "
	if len(n.inner) > 0 {
		detail = inner + "│  "
	}
	if attrs := attrText(sp.Attributes()); attrs != "" {
		b.WriteString(clip(detail+attrs, width) + "\n")
	}
	events := make([]ptrace.SpanEvent, 0, sp.Events().Len())
	for _, ev := range sp.Events().All() {
		events = append(events, ev)
	}
	slices.SortStableFunc(events, func(a, b ptrace.SpanEvent) int { return cmp.Compare(a.Timestamp(), b.Timestamp()) })
	for _, ev := range events {
		line := fmt.Sprintf("%s· %s +%.2f ms", detail, oneLine(ev.Name(), maxValue), millis(sp.StartTimestamp(), ev.Timestamp()))
		if d, ok := ev.Attributes().Get(durationAttr); ok {
			switch d.Type() {
			case pcommon.ValueTypeDouble:
				line += fmt.Sprintf(" (%.2f ms)", d.Double())
			case pcommon.ValueTypeInt:
				line += fmt.Sprintf(" (%d ms)", d.Int())
			}
		}
		b.WriteString(clip(line, width) + "\n")
	}
	for i, e := range n.inner {
		last := i == len(n.inner)-1
		if e.span != nil {
			writeSpan(b, e.span, inner, last)
			continue
		}
		branch := "├─ "
		if last {
			branch = "└─ "
		}
		b.WriteString(inner + branch + logText(e.log) + "\n")
	}
}

// millis is the time from one timestamp to another in milliseconds, negative when they
// are out of order, which then shows.
func millis(from, to pcommon.Timestamp) float64 {
	return float64(int64(to)-int64(from)) / float64(time.Millisecond)
}

// attrText is the attributes as key=value, sorted by key.
func attrText(m pcommon.Map) string {
	pairs := make([]string, 0, m.Len())
	for k, v := range m.All() {
		pairs = append(pairs, k+"="+oneLine(v.AsString(), maxValue))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}

// logText is a log record as time, severity and body.
func logText(lr plog.LogRecord) string {
	return fmt.Sprintf("%s %-6s %s", clock(logTime(lr)), severity(lr), oneLine(lr.Body().AsString(), maxLogBody))
}

// clock is the UTC time of day of t, to the millisecond, which is what tells the lines of
// one run apart.
func clock(t pcommon.Timestamp) string {
	if t == 0 {
		return "--:--:--.---"
	}
	return t.AsTime().UTC().Format("15:04:05.000")
}

// logTime is when a log record's event happened or, failing that, was observed.
func logTime(lr plog.LogRecord) pcommon.Timestamp {
	return cmp.Or(lr.Timestamp(), lr.ObservedTimestamp())
}

// orderTime places a record in the tree. The observed time comes first because it is the
// platform's, in stream order at millisecond resolution: a JSON line's own sub-millisecond
// time would otherwise sort it after a platform event of the same millisecond that
// followed it.
func orderTime(lr plog.LogRecord) pcommon.Timestamp {
	return cmp.Or(lr.ObservedTimestamp(), lr.Timestamp())
}

// severity is the record's severity text or, without one, the name of its number: INFO
// for 9, INFO2 for 10 and so on.
func severity(lr plog.LogRecord) string {
	if t := lr.SeverityText(); t != "" {
		return oneLine(t, 12)
	}
	n := int(lr.SeverityNumber())
	if n < 1 || n > 24 {
		return "-"
	}
	name := [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}[(n-1)/4]
	if step := (n-1)%4 + 1; step > 1 {
		name += strconv.Itoa(step)
	}
	return name
}

// oneLine makes s fit on one line of at most n runes, so that the tree stays intact: line
// breaks shown as ⏎ (a carriage return dropped, so that \r\n is one), other control
// characters as spaces, invalid UTF-8 as U+FFFD, the end cut with "…".
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return '⏎'
		case r == '\r':
			return -1
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
	return clip(s, n)
}

// clip cuts s to n runes, ending it with "…" when something was cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
