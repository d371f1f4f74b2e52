package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

// invokes is the number of invocations of each scenario.
const invokes = 20

// okEvent is the hello action that writes 3 text lines and 2 JSON lines.
const okEvent = `{"action":"ok"}`

// allDrops are every signal's drops for a reason.
func allDrops(reason string) []string {
	return []string{"traces/" + reason, "logs/" + reason, "metrics/" + reason}
}

// TestBackendFaults runs twenty invocations against a backend that fails in one way each,
// and checks that everything the platform delivered reached the backend exactly once, or
// was counted as dropped with the reason the fault explains.
func TestBackendFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		grpc bool
		// events are the invocations' payloads; okEvent when nil.
		events []string
		env    []string
		// fault is the front's behaviour from the start.
		fault otlptest.Fault
		// down takes the backend away from the start.
		down bool
		// outage takes the backend away before invocation from and brings it back before
		// invocation to (indexes from 0); the invocations are then posted one at a time.
		outage [2]int
		want   expect
		check  func(t *testing.T, b *backend, r *run)
	}{
		{name: "healthy", env: []string{"LAMBDA_OTEL_FLUSH=end"}},
		{name: "healthy, gRPC", grpc: true, env: []string{"LAMBDA_OTEL_FLUSH=end"}},
		{
			// Three retries fit the first flush's budget: it delivers.
			name: "503 for the first 3 requests",
			env:  []string{"LAMBDA_OTEL_FLUSH=end"},
			fault: func(n int, _ *http.Request) otlptest.Answer {
				if n <= 3 {
					return otlptest.Answer{Status: http.StatusServiceUnavailable}
				}
				return otlptest.Answer{}
			},
			check: func(t *testing.T, b *backend, r *run) {
				if s := b.front.Stats(); s.Injected[http.StatusServiceUnavailable] != 3 {
					t.Errorf("the front answered 503 %d times, want 3", s.Injected[http.StatusServiceUnavailable])
				}
				if n := r.stream.countMsg(msgIncomplete); n != 0 {
					t.Errorf("%d flushes were incomplete; the retries fit the first one", n)
				}
			},
		},
		{
			// The budget holds the 1 s Retry-After, so the flush waits it out and succeeds.
			name: "429 with Retry-After 1 s",
			env:  []string{"LAMBDA_OTEL_FLUSH=end", "LAMBDA_OTEL_FLUSH_TIMEOUT_MS=2500"},
			fault: func(n int, _ *http.Request) otlptest.Answer {
				if n <= 2 {
					return otlptest.Answer{Status: http.StatusTooManyRequests, RetryAfter: "1"}
				}
				return otlptest.Answer{}
			},
			check: func(t *testing.T, b *backend, _ *run) {
				s := b.front.Stats()
				if s.Injected[http.StatusTooManyRequests] != 2 {
					t.Errorf("the front answered 429 %d times, want 2", s.Injected[http.StatusTooManyRequests])
				}
				if s.Early != 0 {
					t.Errorf("%d requests came before the Retry-After had passed", s.Early)
				}
			},
		},
		{
			// Invocations of 50 ms make the outage last over a second, past the first
			// backoff: the flush that meets the outage spends its budget, then the flushes
			// during invocations only queue, but for a probe once the backoff has passed.
			name:   "down in the middle",
			events: events(linesEvent(4, 2, 50*time.Millisecond)),
			env:    []string{"LAMBDA_OTEL_FLUSH=end"},
			outage: [2]int{6, 14},
			check:  checkOutage,
		},
		{
			name:   "down in the middle, gRPC",
			grpc:   true,
			events: events(linesEvent(4, 2, 50*time.Millisecond)),
			env:    []string{"LAMBDA_OTEL_FLUSH=end"},
			outage: [2]int{6, 14},
			check:  checkOutage,
		},
		{
			name:  "down until after shutdown",
			env:   []string{"LAMBDA_OTEL_FLUSH=end"},
			down:  true,
			want:  expect{drops: allDrops("shutdown"), backendDown: true},
			check: checkDroppedAtShutdown,
		},
		{
			name:  "down until after shutdown, gRPC",
			grpc:  true,
			env:   []string{"LAMBDA_OTEL_FLUSH=end"},
			down:  true,
			want:  expect{drops: allDrops("shutdown"), backendDown: true},
			check: checkDroppedAtShutdown,
		},
		{
			// Every flush during an invocation gives up after 100 ms; the shutdown's budget
			// is long enough for the slow answers.
			name: "slower than the flush budget",
			env:  []string{"LAMBDA_OTEL_FLUSH=end", "LAMBDA_OTEL_FLUSH_TIMEOUT_MS=100"},
			fault: func(int, *http.Request) otlptest.Answer {
				return otlptest.Answer{Delay: 300 * time.Millisecond}
			},
			check: func(t *testing.T, _ *backend, r *run) {
				// The budget, the platform's 25 ms batching before runtimeDone, and a margin
				// for a loaded machine.
				const bound = 100*time.Millisecond + 150*time.Millisecond
				for id, d := range r.stream.overhead {
					if d > bound {
						t.Errorf("invocation %s: the extension added %v after the response, over %v", id, d, bound)
					}
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, tc.grpc)
			b.front.SetFault(tc.fault)
			if tc.down {
				b.front.Down()
			}
			rc := runConfig{events: tc.events, n: invokes, env: tc.env}
			if rc.events == nil {
				rc.events = events(okEvent)
			}
			if tc.outage != [2]int{} {
				rc.before = func(i int, _ *runHandle) {
					switch i {
					case tc.outage[0]:
						b.front.Down()
					case tc.outage[1]:
						if err := b.front.Up(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			r := runEmulator(t, b, rc)
			got := receive(b.rcv)
			checkAccounting(t, r, got, tc.want)
			if tc.check != nil {
				tc.check(t, b, r)
			}
			logFigures(t, r, got)
			if tc.outage != [2]int{} {
				logOutage(t, r, tc.outage)
			}
		})
	}
}

// checkOutage: the backend went down once; the backoff kept the flushes that met the
// outage few, and the invocations during it unheld.
func checkOutage(t *testing.T, b *backend, r *run) {
	t.Helper()
	if s := b.front.Stats(); s.Down != 1 {
		t.Errorf("the backend went down %d times, want 1", s.Down)
	}
	// Probes at 1 s and 3 s after the first failure: an outage of about 1.5 s meets at most
	// three failed flushes, four on a slow machine. Without the backoff, each of its eight
	// invocations had one.
	if n := r.stream.countMsg(msgIncomplete); n == 0 || n > 4 {
		t.Errorf("%d flushes were incomplete; want 1 to 4 with the backoff", n)
	}
	// Without the backoff, each flush during the outage spent its budget: 750 ms median
	// (the retries' pauses of 50+100+200+400 ms within the 1 s budget).
	if m := median(outageOverheads(r, [2]int{6, 14})); m > 250*time.Millisecond {
		t.Errorf("median overhead during the outage %v, want the backoff to keep it well under the budget", m)
	}
}

// checkDroppedAtShutdown: everything was dropped at shutdown, as the extension's own
// tally says too.
func checkDroppedAtShutdown(t *testing.T, _ *backend, r *run) {
	t.Helper()
	drops := r.stream.drops()
	self := map[string]int{}
	for _, l := range r.stream.extension {
		for _, e := range l.Exports {
			self[e.Signal+"/"+e.Outcome] += e.Items
		}
	}
	for _, k := range allDrops("shutdown") {
		if drops[k] == 0 || drops[k] != self[k] {
			t.Errorf("%s: %d logged as dropped, %d in the extension's tally; want the same, not 0", k, drops[k], self[k])
		}
	}
}

// msgIncomplete is the extension's line for a flush that left data for later.
const msgIncomplete = "export incomplete; what was not sent is kept for the next flush"

// outageOverheads are the extension's overheads of the invocations whose flushes meet an
// outage: the backend goes right after the response of the invocation before outage[0],
// whose flush, a little later, finds it gone, and comes back right after the response of
// the invocation before outage[1], whose flush finds it back.
func outageOverheads(r *run, outage [2]int) []time.Duration {
	var during []time.Duration
	for i, id := range r.stream.invocations {
		if i >= outage[0]-1 && i < outage[1]-1 {
			during = append(during, r.stream.overhead[id])
		}
	}
	return during
}

// logOutage logs the extension's overhead during an outage.
func logOutage(t *testing.T, r *run, outage [2]int) {
	t.Helper()
	during := outageOverheads(r, outage)
	var ds []string
	for _, d := range during {
		ds = append(ds, fmt.Sprintf("%.1f", ms(d)))
	}
	t.Logf("FIGURES outage: overhead per invocation [%s] ms; median %.1f ms, max %.1f ms; %d incomplete flushes",
		strings.Join(ds, " "), ms(median(during)), ms(slices.Max(during)), r.stream.countMsg(msgIncomplete))
}
