package extension

import (
	"context"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/telemetry"
	"github.com/lambda-otel/lambda-otel/telemetry/convert"
)

// Adaptive flushing. While invocations are sparse, each one's telemetry is flushed at its
// end: the environment may be frozen for long after it, and the cost is one export per
// invocation, which sparse traffic keeps low. Once each of the last adaptiveGaps gaps
// between invocations is under adaptivePeriod, flushing at the start of an invocation
// every adaptivePeriod sends as much with fewer exports, and costs the invocations that
// do not flush nothing.
const (
	adaptivePeriod = 10 * time.Second
	adaptiveGaps   = 3
	// doneMargin is kept before an invocation's deadline when waiting for its
	// platform.runtimeDone, so that the flush after it still fits.
	doneMargin = 50 * time.Millisecond
	// closeMargin is kept, on top of the loop's own margin, before the SHUTDOWN deadline
	// for closing the exporters after the last export.
	closeMargin = 30 * time.Millisecond
	// flushBytes is the buffered telemetry at which periodic flushing does not wait for
	// its period: at 10,000 lines a second, a 10 s period would hold 100,000 events.
	flushBytes = 2 << 20
	// chunkEvents bounds how many events are converted to pdata at once. A backlog (a
	// flood, or what the shutdown strategy held) is converted, queued and sent a chunk at
	// a time, so that the pdata of all of it never exists at once and the export queue's
	// bound applies to what waits between flushes, not to one flush.
	chunkEvents = 4096
)

// Backing off from an unavailable destination. A flush that leaves data behind for a
// reason that may pass (the backend down, overloaded or slower than the budget) has spent
// its whole budget, and every flush during the outage would spend it again, adding up to
// LAMBDA_OTEL_FLUSH_TIMEOUT_MS to every invocation. So after such a flush the flushes
// during invocations only queue what they convert, until a backoff has passed; the next
// flush is then a probe, and the backoff doubles while probes fail. SHUTDOWN always
// exports, whatever the backoff.
const (
	minFlushBackoff = time.Second
	maxFlushBackoff = time.Minute
)

// flusher decides when to flush and does it. It is used from the event loop only.
type flusher struct {
	cfg   Flush
	limit time.Duration
	queue *exporters.Queue
	now   func() time.Time

	last       time.Time // when the last flush started
	lastInvoke time.Time
	gaps       []time.Duration
	scratch    []telemetry.Event
	// backoff is the current pause after failed flushes, 0 after a complete one; no flush
	// during an invocation exports before retryAt.
	backoff time.Duration
	retryAt time.Time
}

// backingOff reports whether flushes during invocations are paused at now.
func (f *flusher) backingOff(now time.Time) bool { return now.Before(f.retryAt) }

// mode resolves adaptive flushing for an invocation arriving at now.
func (f *flusher) mode(now time.Time) FlushMode {
	if !f.lastInvoke.IsZero() {
		f.gaps = append(f.gaps, now.Sub(f.lastInvoke))
		if len(f.gaps) > adaptiveGaps {
			f.gaps = f.gaps[1:]
		}
	}
	f.lastInvoke = now
	if f.cfg.Mode != FlushAdaptive {
		return f.cfg.Mode
	}
	if len(f.gaps) < adaptiveGaps {
		return FlushEnd
	}
	for _, g := range f.gaps {
		if g >= adaptivePeriod {
			return FlushEnd
		}
	}
	return FlushPeriodic
}

func (f *flusher) period() time.Duration {
	if f.cfg.Mode == FlushAdaptive {
		return adaptivePeriod
	}
	return f.cfg.Period
}

// onInvoke runs the flush strategy for an INVOKE. ctx ends at the invocation's deadline.
func (a *agent) onInvoke(ctx context.Context, requestID string) {
	f := a.flusher
	now := f.now()
	mode := f.mode(now)
	due := mode == FlushPeriodic && (now.Sub(f.last) >= f.period() || a.backlogged())
	defer f.release()
	if f.backingOff(now) && (mode == FlushEnd || due) {
		// Neither wait for the invocation's end nor export: queue what is here, so that
		// it is bounded and counted as the queue is, and leave the invocation alone.
		f.scratch = a.convertBuffered(f.scratch[:0], a.shipper(ctx, false))
		a.enqueue()
		return
	}
	switch {
	case mode == FlushEnd:
		// Without a subscription no platform.runtimeDone will come: the receiver alone
		// feeds the buffer, and the SDK's data is waited for on its own.
		if a.listener != nil {
			a.awaitRuntimeDone(ctx, requestID)
		}
		// The SDK's data shares the flush budget: waiting for it takes at most half.
		waited := a.awaitSDK(ctx, requestID, f.limit/2)
		a.flush(ctx, f.limit-waited)
	case due:
		a.flush(ctx, f.limit)
	}
}

// backlogged reports whether the buffer holds enough to flush before the period is over:
// at a high rate of telemetry, waiting for the period would hold it all in memory.
func (a *agent) backlogged() bool {
	_, n := a.buffer.Len()
	return n >= flushBytes
}

// release lets go of the events of the last conversion, which a flood could make large.
func (f *flusher) release() {
	clear(f.scratch)
	f.scratch = f.scratch[:0]
	if cap(f.scratch) > 2*chunkEvents {
		f.scratch = nil
	}
}

// awaitRuntimeDone converts the invocation's telemetry as it arrives until its
// platform.runtimeDone is in, leaving room before the deadline for the flush.
func (a *agent) awaitRuntimeDone(ctx context.Context, requestID string) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-a.flusher.limit-doneMargin))
		defer cancel()
	}
	f := a.flusher
	f.scratch = a.await(ctx, f.scratch[:0], 0, a.shipper(ctx, false), func(e *telemetry.Event) bool {
		r, ok := e.Record.(*telemetry.RuntimeDone)
		return ok && r.RequestID == requestID && a.pending.runtimeDoneIn(requestID)
	})
}

// awaitSDK waits, for at most budget, for the function's own telemetry of the invocation:
// until no request to the receiver is in progress, and, when the function's SDK is
// expected to send the invocation's spans (see convert.Converter.AwaitsSDK), until their
// root is in. An SDK that flushes after the runtime is done (from a goroutine or thread
// the runtime does not wait for) is then in the same export. It returns how long it
// waited.
func (a *agent) awaitSDK(ctx context.Context, requestID string, budget time.Duration) time.Duration {
	if a.receiver == nil {
		return 0
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	f := a.flusher
	ship := a.shipper(ctx, false)
	for {
		f.scratch = a.convertBuffered(f.scratch, ship)
		expected := a.conv.AwaitsSDK(requestID)
		if !expected && !a.receiver.Busy() {
			return time.Since(began)
		}
		select {
		case <-a.receiver.Changed():
		case <-a.buffer.Added():
		case <-ctx.Done():
			if expected {
				a.conv.SDKLate()
			}
			return time.Since(began)
		}
	}
}

// flush converts what the buffer holds and exports it, and what earlier flushes left,
// within limit and ctx.
func (a *agent) flush(ctx context.Context, limit time.Duration) {
	f := a.flusher
	f.last = f.now()
	fctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	f.scratch = a.convertBuffered(f.scratch[:0], a.shipper(fctx, false))
	a.enqueue()
	if err := f.send(fctx, f.last); err != nil {
		a.log.Warn("export incomplete; what was not sent is kept for the next flush", "error", err.Error())
	}
}

// send exports what is queued within ctx, for a flush that started at start, and sets the
// backoff by the outcome: what a flush leaves queued was refused for now (what is refused
// for good is dropped), and the flushes during invocations pause.
func (f *flusher) send(ctx context.Context, start time.Time) error {
	err := f.queue.Flush(ctx)
	if err == nil || !f.queue.Pending() {
		f.backoff, f.retryAt = 0, time.Time{}
		return err
	}
	f.backoff = min(max(2*f.backoff, minFlushBackoff), maxFlushBackoff)
	// A destination that said when to come back is not probed sooner.
	f.retryAt = start.Add(max(f.backoff, f.queue.RetryAfter()))
	return err
}

// shipper returns what convertBuffered does between the chunks of a backlog: take the
// converted chunk into the export queue and, when force is set or no backoff is running,
// send what is queued within ctx and the flush budget. The extension's own counters stay
// those of the first chunk, so that a backlog adds no metric points of its own.
func (a *agent) shipper(ctx context.Context, force bool) func() {
	var self *convert.Self
	return func() {
		if self == nil {
			s := a.self()
			self = &s
		}
		a.enqueueAs(*self)
		f := a.flusher
		start := f.now()
		if !force && f.backingOff(start) {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, f.limit)
		defer cancel()
		f.send(sctx, start)
	}
}

// enqueue takes what the converter has ready into the export queue.
func (a *agent) enqueue() { a.enqueueAs(a.self()) }

// enqueueAs is enqueue with the extension's own counters as of self.
func (a *agent) enqueueAs(self convert.Self) {
	d := a.conv.Take(time.Now(), self)
	a.flusher.queue.Add(exporters.TracesRequest(d.Traces), exporters.LogsRequest(d.Logs), exporters.MetricsRequest(d.Metrics))
}

// self gathers the extension's own counters for the metrics.
func (a *agent) self() convert.Self {
	s := convert.Self{Telemetry: a.stats.Snapshot()}
	for _, c := range a.flusher.queue.Counts() {
		s.Exports = append(s.Exports, convert.ExportCount{Exporter: c.Exporter, Signal: c.Signal, Outcome: c.Outcome, Items: c.Items})
	}
	return s
}
