package extension

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/otlptest"
)

// invocationBatch is the telemetry of one invocation up to its end: three log records
// once converted (START, the line, RUNTIME_DONE).
func invocationBatch(id string, at time.Time) []byte {
	ts := func(d time.Duration) string { return at.Add(d).UTC().Format("2006-01-02T15:04:05.000Z") }
	return []byte(fmt.Sprintf(`[
		{"time":%q,"type":"platform.start","record":{"requestId":%q,"version":"$LATEST"}},
		{"time":%q,"type":"function","record":"[INFO] working on %s"},
		{"time":%q,"type":"platform.runtimeDone","record":{"requestId":%q,"status":"success","metrics":{"durationMs":10}}}
	]`, ts(0), id, ts(time.Millisecond), id, ts(10*time.Millisecond), id))
}

// invoke sends an INVOKE once the agent waits for one.
func (r *agentRun) invoke(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": id, "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
}

// TestFlushStrategies checks, for each strategy, what the backend has received when the
// extension asks for its next event after each invocation, and that shutdown delivers the
// rest.
func TestFlushStrategies(t *testing.T) {
	tests := []struct {
		flush string
		// logs the backend holds when the extension calls event/next after the first and
		// the second invocation.
		afterFirst, afterSecond int
	}{
		// end: each invocation's records are sent before event/next.
		{"end", 3, 6},
		// adaptive starts as end: the first invocations are sparse.
		{"adaptive", 3, 6},
		// periodic with a short period: each invocation's start sends what is buffered,
		// here its own records, delivered before it.
		{"periodic,1", 3, 6},
		// periodic with a long period, and shutdown: nothing before shutdown.
		{"periodic,3600000", 0, 0},
		{"shutdown", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.flush, func(t *testing.T) {
			ctx := testCtx(t)
			rcv := otlptest.Start(t)
			cfg := testConfig()
			exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
			f, err := parseFlush(tt.flush)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Flush = f
			cfg.Convert.PlatformLogs = 0b111000 // start, runtimeDone, report
			// The flush strategies' clock moves a second at each invocation, so that a
			// period of 1 ms has passed and one of an hour has not, however fast the test.
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			tick := func() { clock.Add(int64(time.Second)) }
			r := startAgent(t, lambdatest.Options{}, cfg, nil, func(o *Options) {
				o.Clock = func() time.Time { return time.Unix(0, clock.Load()) }
			})
			sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
			logs := func() int { _, l, _ := rcv.Counts(); return l }

			// Each batch is delivered before its INVOKE, so that what a flush at the start
			// of an invocation finds does not depend on timing.
			if status, err := lambdatest.Deliver(ctx, sub, invocationBatch("first", time.Now())); err != nil || status != 200 {
				t.Fatalf("deliver: %d %v", status, err)
			}
			tick()
			r.invoke(t, ctx, "first")
			lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
			if got := logs(); got != tt.afterFirst {
				t.Errorf("after the first invocation the backend has %d log records, want %d", got, tt.afterFirst)
			}
			if status, err := lambdatest.Deliver(ctx, sub, invocationBatch("second", time.Now())); err != nil || status != 200 {
				t.Fatalf("deliver: %d %v", status, err)
			}
			tick()
			if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "second", "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			r.shutdownAfterNext(t, ctx, func() {
				if got := logs(); got != tt.afterSecond {
					t.Errorf("after the second invocation the backend has %d log records, want %d", got, tt.afterSecond)
				}
			})
			// Shutdown sends the rest: both invocations' records and spans.
			if spans, logs, points := rcv.Counts(); logs != 6 || spans != 2 || points == 0 {
				t.Errorf("after shutdown the backend has %d spans, %d log records, %d points; want 2, 6, some", spans, logs, points)
			}
		})
	}
}

// shutdownAfterNext waits for event/next, runs check, then sends SHUTDOWN and waits for
// Run to return.
func (r *agentRun) shutdownAfterNext(t *testing.T, ctx context.Context, check func()) {
	t.Helper()
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	check()
	dl := time.Now().Add(2 * time.Second).UnixMilli()
	if err := r.api.SendRaw(ctx, 200, []byte(fmt.Sprintf(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":%d}`, dl))); err != nil {
		t.Fatal(err)
	}
	if err := lambdatest.Recv(t, ctx, r.done, "Run to return"); err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// TestDeadBackendDoesNotHoldTheFunction: with a backend that never answers, each flush
// gives up at its budget, event/next still comes, and at shutdown what could not be sent
// is counted as dropped.
func TestDeadBackendDoesNotHoldTheFunction(t *testing.T) {
	ctx := testCtx(t)
	hang := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer backend.Close()
	defer close(hang)
	cfg := testConfig()
	cfg.Export = exporters.DefaultConfig()
	for _, s := range exporters.Signals {
		cfg.Export.OTLP[s].URL = backend.URL + "/v1/" + s.String()
	}
	cfg.Flush = Flush{Mode: FlushEnd}
	cfg.FlushTimeoutMs = 100
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
	r.invoke(t, ctx, "stuck")
	if status, err := lambdatest.Deliver(ctx, sub, invocationBatch("stuck", time.Now())); err != nil || status != 200 {
		t.Fatalf("deliver: %d %v", status, err)
	}
	r.shutdownAfterNext(t, ctx, func() {})
	log := r.logs.String()
	for _, want := range []string{"export incomplete", `"Outcome":"shutdown"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
}

// TestFlushBacksOffFromAnUnavailableBackend: after a flush that the backend refused for
// now, the flushes during the next invocations export nothing (they cost the invocation no
// budget) until the backoff has passed, one second doubling, or the backend's Retry-After
// if longer; the next flush is a probe; nothing is lost. The strategies' clock moves
// 250 ms per invocation.
func TestFlushBacksOffFromAnUnavailableBackend(t *testing.T) {
	tests := []struct {
		name string
		// refuse is the answer while the backend is unavailable, for invocations before
		// recoverAt.
		refuse    otlptest.Answer
		recoverAt int
		// exporting are the invocations whose flush reaches the backend, of n.
		exporting []int
		n         int
	}{
		// A failed flush at 0 s; a probe at 1 s fails; backoff 2 s; the probe at 3 s
		// delivers everything, and flushing is normal again.
		{"503", otlptest.Answer{Status: http.StatusServiceUnavailable}, 8, []int{0, 4, 12, 13}, 14},
		// Retry-After 2 s outlasts the first backoff of 1 s: no probe before 2 s.
		{"429 with Retry-After", otlptest.Answer{Status: http.StatusTooManyRequests, RetryAfter: "2"}, 4, []int{0, 8, 9}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			rcv := otlptest.Start(t)
			front := otlptest.StartFront(t, rcv.HTTPEndpoint)
			var available atomic.Bool
			front.SetFault(func(int, *http.Request) otlptest.Answer {
				if available.Load() {
					return otlptest.Answer{}
				}
				return tt.refuse
			})
			cfg := testConfig()
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": front.URL}
			ec, err := exporters.LoadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			cfg.Export = ec
			cfg.Flush = Flush{Mode: FlushEnd}
			cfg.FlushTimeoutMs = 100
			cfg.Convert.PlatformLogs = 0b111000 // start, runtimeDone, report
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			r := startAgent(t, lambdatest.Options{}, cfg, nil, func(o *Options) {
				o.Clock = func() time.Time { return time.Unix(0, clock.Load()) }
			})
			sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
			lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
			var exporting []int
			for i := range tt.n {
				available.Store(i >= tt.recoverAt)
				id := fmt.Sprintf("inv-%d", i)
				if status, err := lambdatest.Deliver(ctx, sub, invocationBatch(id, time.Now())); err != nil || status != 200 {
					t.Fatalf("deliver: %d %v", status, err)
				}
				before := front.Stats().Requests
				if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": id, "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
					t.Fatal(err)
				}
				// The invocation's flush, if any, is over when the extension asks for more.
				lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
				if front.Stats().Requests > before {
					exporting = append(exporting, i)
				}
				clock.Add(int64(250 * time.Millisecond))
			}
			if !slices.Equal(exporting, tt.exporting) {
				t.Errorf("flushes reached the backend at invocations %v, want %v", exporting, tt.exporting)
			}
			dl := time.Now().Add(2 * time.Second).UnixMilli()
			if err := r.api.SendRaw(ctx, 200, []byte(fmt.Sprintf(`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":%d}`, dl))); err != nil {
				t.Fatal(err)
			}
			if err := lambdatest.Recv(t, ctx, r.done, "Run to return"); err != nil {
				t.Fatalf("Run returned %v", err)
			}
			// Everything arrived: 3 log records per invocation, and a span each (incomplete,
			// at shutdown, since these batches have no report).
			if spans, logs, _ := rcv.Counts(); logs != 3*tt.n || spans != tt.n {
				t.Errorf("the backend has %d log records and %d spans, want %d and %d", logs, spans, 3*tt.n, tt.n)
			}
			if strings.Contains(r.logs.String(), "telemetry dropped") {
				t.Errorf("telemetry was dropped:\n%s", r.logs.String())
			}
		})
	}
}

// lineBatches delivers n function log lines of text, numbered, in batches of 2,000.
func lineBatches(t *testing.T, ctx context.Context, sub lambdatest.SubscribeCall, n int, text string) {
	t.Helper()
	at := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for i := 0; i < n; i += 2000 {
		var b strings.Builder
		b.WriteByte('[')
		for j := i; j < min(i+2000, n); j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"time":%q,"type":"function","record":"[INFO] %s %d"}`, at, text, j)
		}
		b.WriteByte(']')
		if status, err := lambdatest.Deliver(ctx, sub, []byte(b.String())); err != nil || status != 200 {
			t.Fatalf("deliver: %d %v", status, err)
		}
	}
}

// A backlog whose OTLP form is larger than the export queue's bound, although it fit the
// buffer, is converted and sent a chunk at a time: nothing is dropped at shutdown. Short
// lines of an invocation are such a backlog: each record gains the invocation's id and
// trace context.
func TestShutdownSendsABacklogLargerThanTheQueue(t *testing.T) {
	ctx := testCtx(t)
	rcv := otlptest.Start(t)
	cfg := testConfig()
	exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
	cfg.QueueMaxBytes = 4 << 20
	cfg.Convert.PlatformLogs = 0
	const lines = 40000 // 3.4 MB as delivered, 5 MB as OTLP
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
	r.invoke(t, ctx, "only")
	start := fmt.Sprintf(`[{"time":%q,"type":"platform.start","record":{"requestId":"only","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}}]`,
		time.Now().Add(-time.Second).UTC().Format("2006-01-02T15:04:05.000Z"))
	if status, err := lambdatest.Deliver(ctx, sub, []byte(start)); err != nil || status != 200 {
		t.Fatalf("deliver: %d %v", status, err)
	}
	lineBatches(t, ctx, sub, lines, "x")
	r.shutdown(t, ctx)
	if _, logs, _ := rcv.Counts(); logs != lines {
		t.Errorf("the backend has %d log records, want %d", logs, lines)
	}
	if strings.Contains(r.logs.String(), `"msg":"telemetry dropped`) {
		t.Errorf("telemetry was dropped:\n%s", r.logs.String())
	}
}

// Periodic flushing does not wait for its period when the buffer holds flushBytes: at a
// high rate of telemetry, waiting would hold it all in memory.
func TestPeriodicFlushesABacklogBeforeItsPeriod(t *testing.T) {
	ctx := testCtx(t)
	rcv := otlptest.Start(t)
	cfg := testConfig()
	exportTo(t, &cfg, rcv, exporters.HTTPProtobuf)
	cfg.Flush = Flush{Mode: FlushPeriodic, Period: time.Hour}
	r := startAgent(t, lambdatest.Options{}, cfg, nil)
	sub := lambdatest.Recv(t, ctx, r.api.Subscribes, "subscribe")
	small := 100
	lineBatches(t, ctx, sub, small, strings.Repeat("x", 200))
	r.invoke(t, ctx, "first")
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if _, logs, _ := rcv.Counts(); logs != 0 {
		t.Fatalf("after a small backlog the backend has %d log records, want none before the period", logs)
	}
	const lines = 10000 // about 2.5 MB buffered, over flushBytes
	lineBatches(t, ctx, sub, lines, strings.Repeat("x", 200))
	if err := r.api.Send(ctx, map[string]any{"eventType": "INVOKE", "requestId": "second", "deadlineMs": time.Now().Add(time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	r.shutdownAfterNext(t, ctx, func() {
		if _, logs, _ := rcv.Counts(); logs != small+lines {
			t.Errorf("after a large backlog the backend has %d log records, want %d before the period", logs, small+lines)
		}
	})
}
