package e2e

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// expect is what a scenario allows besides exact delivery.
type expect struct {
	// drops are the "signal/reason" pairs the extension may count as dropped; any other drop
	// fails the test.
	drops []string
	// backendDown says the backend is unreachable at shutdown, so that the last metrics
	// cannot reach it and the extension's log lines are the record.
	backendDown bool
}

// checkAccounting is the suite's promise: every record the platform generated reached the
// backend exactly once, or was counted as dropped by the platform (logsDropped) or by the
// extension, with a reason the scenario expects.
func checkAccounting(t *testing.T, r *run, got received, want expect) {
	t.Helper()
	s := r.stream
	drops := s.drops()
	for k := range drops {
		if !slices.Contains(want.drops, k) {
			t.Errorf("the extension dropped %d items as %s, which this scenario does not allow", drops[k], k)
		}
	}
	dropped := func(signal string) int {
		n := 0
		for k, v := range drops {
			if strings.HasPrefix(k, signal+"/") {
				n += v
			}
		}
		return n
	}

	// The extension received exactly what the platform delivered, one shutdown line per
	// environment telling its own count.
	self, lines := s.selfCount("events")
	if lines != s.inits {
		t.Errorf("%d shutdown lines of the extension, want one per environment (%d)", lines, s.inits)
	}
	if self != s.deliverable() {
		t.Errorf("the extension says it received %d events; the platform delivered %d (%d generated, %d dropped by the platform, %d written after the extension stopped listening)",
			self, s.deliverable(), s.generated, s.platformDropped, s.undeliverable)
	}
	bufferDropped, _ := s.selfCount("dropped_buffer_full")
	if bufferDropped != 0 {
		t.Errorf("the extension's buffer dropped %d events", bufferDropped)
	}

	// Each delivered event is one log record; each phase one span.
	if got.logs+dropped("logs") != s.deliverable() {
		t.Errorf("log records: %d received + %d dropped = %d, want %d delivered events",
			got.logs, dropped("logs"), got.logs+dropped("logs"), s.deliverable())
	}
	if len(got.spans)+dropped("traces") != s.spans() {
		t.Errorf("spans: %d received + %d dropped = %d, want %d (%d inits, %d invocations)",
			len(got.spans), dropped("traces"), len(got.spans)+dropped("traces"), s.spans(), s.inits, len(s.invocations))
	}
	if dl, ds := got.duplicates(); dl+ds > 0 {
		t.Errorf("received %d log records and %d spans more than once", dl, ds)
	}
	if dropped("traces") == 0 {
		var ids []string
		for _, sp := range got.spans {
			if sp.name != "init" {
				ids = append(ids, sp.invocationID)
			}
		}
		slices.Sort(ids)
		want := slices.Sorted(slices.Values(s.invocations))
		if !slices.Equal(ids, want) {
			t.Errorf("invocation spans for %v, want one for each of %v", ids, want)
		}
	}

	// The extension's own tally of what it delivered agrees with the backend's.
	exported := map[string]int{}
	for _, l := range s.extension {
		for _, e := range l.Exports {
			if e.Outcome == "exported" {
				exported[e.Signal] += e.Items
			}
		}
	}
	for signal, n := range map[string]int{"traces": len(got.spans), "logs": got.logs, "metrics": got.points} {
		if exported[signal] != n {
			t.Errorf("the extension says it exported %d %s items; the backend received %d", exported[signal], signal, n)
		}
	}

	if want.backendDown {
		if got.logs+len(got.spans)+got.points != 0 {
			t.Errorf("the backend was down, yet received %d spans, %d log records, %d points", len(got.spans), got.logs, got.points)
		}
		return
	}
	// The final metrics tell the same story.
	failed, timeouts, oom := s.outcomes()
	for _, m := range []struct {
		name string
		with []string
		want int
	}{
		{"faas.invocations", nil, len(s.invocations)},
		{"faas.coldstarts", nil, s.inits},
		{"faas.errors", nil, failed},
		{"faas.timeouts", nil, timeouts},
		{"aws.lambda.out_of_memory", nil, oom},
		{"faas.invoke_duration", nil, len(s.reports)},
		{"faas.init_duration", nil, s.inits},
		{"aws.lambda.logs_dropped", nil, s.platformDropped},
		{"lambda_otel.events.received", nil, s.deliverable()},
		{"lambda_otel.events.dropped", nil, 0},
		{"lambda_otel.export.failed", []string{"signal=logs"}, dropped("logs")},
		{"lambda_otel.export.failed", []string{"signal=traces"}, dropped("traces")},
	} {
		if got := got.metricSum(m.name, m.with...); got != float64(m.want) {
			t.Errorf("final %s%v = %v, want %d", m.name, m.with, got, m.want)
		}
	}
}

// logFigures logs the line of the report's table for a scenario.
func logFigures(t *testing.T, r *run, got received) {
	t.Helper()
	s := r.stream
	var overheads []time.Duration
	for _, d := range s.overhead {
		overheads = append(overheads, d)
	}
	drops := s.drops()
	var dl []string
	for _, k := range slices.Sorted(maps.Keys(drops)) {
		dl = append(dl, k+"="+strconv.Itoa(drops[k]))
	}
	t.Logf("FIGURES %s: sent: %d events (%d generated, %d platform-dropped, %d after close), %d spans | received: %d logs, %d spans, %d points | dropped: %s | overhead median %.1f ms, max %.1f ms | extension peak RSS %d KiB | %s",
		t.Name(), s.deliverable(), s.generated, s.platformDropped, s.undeliverable, s.spans(), got.logs, len(got.spans), got.points,
		strings.Join(dl, " "), ms(median(overheads)), ms(slices.Max(append(overheads, 0))), r.maxRSSKiB,
		strings.Join(regexp.MustCompile(`shutdown \(\w+\) took [\d.]+ ms`).FindAllString(r.stdout, -1), ", "))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
