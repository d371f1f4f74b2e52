package exporters

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

// bigRequest returns a request of signal with items items of about itemBytes each, spread over
// two resources of two scopes each; names of the items are "0", "1", … in order.
func bigRequest(signal Signal, items, itemBytes int) Request {
	pad := strings.Repeat("x", itemBytes)
	n := 0
	switch signal {
	case Traces:
		td := ptrace.NewTraces()
		for r := range 2 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutInt("resource", int64(r))
			for s := range 2 {
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName(fmt.Sprint("scope", s))
				for ; n < items*(2*r+s+1)/4; n++ {
					sp := ss.Spans().AppendEmpty()
					sp.SetName(fmt.Sprint(n))
					sp.SetSpanID(pcommon.SpanID{byte(n >> 8), byte(n)})
					sp.Attributes().PutStr("pad", pad)
				}
			}
		}
		return TracesRequest(td)
	case Logs:
		ld := plog.NewLogs()
		for r := range 2 {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutInt("resource", int64(r))
			for s := range 2 {
				sl := rl.ScopeLogs().AppendEmpty()
				sl.Scope().SetName(fmt.Sprint("scope", s))
				for ; n < items*(2*r+s+1)/4; n++ {
					lr := sl.LogRecords().AppendEmpty()
					lr.Body().SetStr(fmt.Sprint(n))
					lr.Attributes().PutStr("pad", pad)
				}
			}
		}
		return LogsRequest(ld)
	default:
		md := pmetric.NewMetrics()
		for r := range 2 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutInt("resource", int64(r))
			for s := range 2 {
				sm := rm.ScopeMetrics().AppendEmpty()
				sm.Scope().SetName(fmt.Sprint("scope", s))
				for ; n < items*(2*r+s+1)/4; n++ {
					m := sm.Metrics().AppendEmpty()
					m.SetName(fmt.Sprint(n))
					m.SetDescription(pad)
					m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(n))
				}
			}
		}
		return MetricsRequest(md)
	}
}

// names lists the items of r in order, each as "resource/scope/name".
func names(r Request) []string {
	var out []string
	switch r.Signal() {
	case Traces:
		for _, rs := range r.traces.ResourceSpans().All() {
			res, _ := rs.Resource().Attributes().Get("resource")
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					out = append(out, fmt.Sprintf("%d/%s/%s", res.Int(), ss.Scope().Name(), sp.Name()))
				}
			}
		}
	case Logs:
		for _, rl := range r.logs.ResourceLogs().All() {
			res, _ := rl.Resource().Attributes().Get("resource")
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, fmt.Sprintf("%d/%s/%s", res.Int(), sl.Scope().Name(), lr.Body().Str()))
				}
			}
		}
	default:
		for _, rm := range r.metrics.ResourceMetrics().All() {
			res, _ := rm.Resource().Attributes().Get("resource")
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					out = append(out, fmt.Sprintf("%d/%s/%s", res.Int(), sm.Scope().Name(), m.Name()))
				}
			}
		}
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name             string
		signal           Signal
		items, itemBytes int
		max              int
		// pieces is how many requests come out.
		pieces int
	}{
		{"traces within the bound stay whole", Traces, 100, 100, maxRequestBytes, 1},
		{"traces", Traces, 40000, 200, maxRequestBytes, 5},
		{"logs", Logs, 50000, 150, maxRequestBytes, 5},
		{"metrics", Metrics, 20000, 300, maxRequestBytes, 4},
		{"an item over the bound travels alone", Logs, 4, 5000, 4000, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bigRequest(tt.signal, tt.items, tt.itemBytes)
			want, wantItems := names(r), r.Items()
			pieces := r.split(tt.max)
			if len(pieces) != tt.pieces {
				t.Errorf("%d pieces of %d bytes, want %d", len(pieces), r.Size(), tt.pieces)
			}
			var got []string
			items := 0
			for i, p := range pieces {
				if p.Signal() != tt.signal {
					t.Fatalf("piece %d is %s", i, p.Signal())
				}
				if p.Size() > tt.max && p.Items() > 1 {
					t.Errorf("piece %d: %d bytes, over %d", i, p.Size(), tt.max)
				}
				items += p.Items()
				got = append(got, names(p)...)
			}
			// Every item, once, in order, under its own resource and scope.
			if !slices.Equal(got, want) || items != wantItems {
				t.Errorf("the pieces hold %d items, want the %d of the request in order", len(got), len(want))
			}
		})
	}
}

// recorder is an exporter that keeps what it is sent, refusing for now while busy.
type recorder struct {
	got  []Request
	busy bool
}

func (e *recorder) Name() string { return "recorder" }

func (e *recorder) Export(_ context.Context, r Request) Result {
	if e.busy {
		return Result{Retryable: true, RetryAfter: 3 * time.Second, Err: fmt.Errorf("busy: %w", ErrBudget)}
	}
	e.got = append(e.got, r)
	return Result{Accepted: r.Items()}
}

func (e *recorder) Close(context.Context) error { return nil }

// TestQueueCoalesces: what piled up while the destination was busy goes in one request
// per signal, each item once and in order; an oversized request goes in pieces.
func TestQueueCoalesces(t *testing.T) {
	rec := &recorder{busy: true}
	q := NewQueue([]Exporter{rec}, 64<<20, nil)
	var want [numSignals][]string
	for range 10 {
		for _, s := range Signals {
			r := bigRequest(s, 8, 10)
			want[s] = append(want[s], names(r)...)
			q.Add(r)
		}
	}
	if err := q.Flush(context.Background()); err == nil || q.RetryAfter() != 3*time.Second {
		t.Fatalf("a busy destination: error %v, retry after %v; want an error and 3s", err, q.RetryAfter())
	}
	rec.busy = false
	if err := q.Flush(context.Background()); err != nil || q.Pending() || q.RetryAfter() != 0 {
		t.Fatalf("flush: %v, pending %v, retry after %v", err, q.Pending(), q.RetryAfter())
	}
	if len(rec.got) != 3 {
		t.Errorf("%d requests, want one per signal", len(rec.got))
	}
	var got [numSignals][]string
	for _, r := range rec.got {
		got[r.Signal()] = append(got[r.Signal()], names(r)...)
	}
	for _, s := range Signals {
		if !slices.Equal(got[s], want[s]) {
			t.Errorf("%s: received %d items, want the %d queued, in order", s, len(got[s]), len(want[s]))
		}
	}
	for _, c := range q.Counts() {
		if c.Outcome != OutcomeExported || c.Items != 80 {
			t.Errorf("count %+v, want 80 exported of each signal", c)
		}
	}

	// A request over the bound goes in pieces within it.
	rec.got = nil
	q.Add(bigRequest(Logs, 50000, 150))
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	items := 0
	for _, r := range rec.got {
		if r.Size() > maxRequestBytes {
			t.Errorf("a request of %d bytes, over %d", r.Size(), maxRequestBytes)
		}
		items += r.Items()
	}
	if len(rec.got) < 2 || items != 50000 {
		t.Errorf("%d requests with %d log records, want several with 50000", len(rec.got), items)
	}
}

// TestLargeExportOverGRPC: a flush far over gRPC's 4 MiB message limit reaches the
// collector's receiver whole, in pieces; sent as one request it was refused for good.
func TestLargeExportOverGRPC(t *testing.T) {
	rcv := otlptest.Start(t)
	exp := NewOTLP(targets(GRPC, rcv, false))
	q := NewQueue([]Exporter{exp}, 64<<20, nil)
	defer q.Close(context.Background())
	r := bigRequest(Logs, 50000, 150)
	if r.Size() <= 4<<20 {
		t.Fatalf("the request is only %d bytes", r.Size())
	}
	q.Add(r)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, logs, _ := rcv.Counts(); logs != 50000 {
		t.Errorf("the receiver got %d log records, want 50000", logs)
	}
}
