package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/destination"
	"github.com/lambda-otel/lambda-otel/emulator/eventconfig"
)

// MaxAsyncPayloadBytes is the payload limit of an asynchronous invocation.
const MaxAsyncPayloadBytes = 256 << 10

// retryDelays are Lambda's waits after a function error: before the second attempt, and
// before the third.
var retryDelays = [eventconfig.MaxRetryAttempts]time.Duration{time.Minute, 2 * time.Minute}

// ErrQueueFull is returned by InvokeAsync when the queue holds Config.MaxQueuedEvents.
var ErrQueueFull = errors.New("the asynchronous event queue is full")

// asyncEvent is an event of the asynchronous queue, through all its attempts.
type asyncEvent struct {
	req    Request
	id     string
	queued time.Time
	// due is when the next attempt may start, seq its place among events due together.
	due      time.Time
	seq      uint64
	attempts int
	last     *Response
}

// asyncQueue holds the events not yet finished, in the order of their next attempt.
type asyncQueue struct {
	mu      sync.Mutex
	pending []*asyncEvent
	// held counts the events accepted and not finished, the one being run included.
	held int
	seq  uint64
	wake chan struct{}
	// idle, while events are held, is closed when the last one finishes.
	idle chan struct{}
	// closed refuses new events once the queue was drained at shutdown.
	closed bool
}

func newAsyncQueue() *asyncQueue { return &asyncQueue{wake: make(chan struct{}, 1)} }

// push queues ev for its due time; a new event is counted against limit.
func (q *asyncQueue) push(ev *asyncEvent, limit int) error {
	q.mu.Lock()
	if ev.seq == 0 {
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if q.held >= limit {
			q.mu.Unlock()
			return ErrQueueFull
		}
		q.held++
		q.seq++
		ev.seq = q.seq
	}
	i, _ := slices.BinarySearchFunc(q.pending, ev, func(a, b *asyncEvent) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	})
	q.pending = slices.Insert(q.pending, i, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// next takes the first event due at now, or says how long until one is (negative: none
// is queued).
func (q *asyncQueue) next(now time.Time) (*asyncEvent, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil, -1
	}
	if wait := q.pending[0].due.Sub(now); wait > 0 {
		return nil, wait
	}
	ev := q.pending[0]
	q.pending = q.pending[1:]
	return ev, 0
}

func (q *asyncQueue) finish() {
	q.mu.Lock()
	q.held--
	q.wakeIdle()
	q.mu.Unlock()
}

// wakeIdle tells the waiters of idleness, if the queue is idle. q.mu is held.
func (q *asyncQueue) wakeIdle() {
	if q.held == 0 && q.idle != nil {
		close(q.idle)
		q.idle = nil
	}
}

// closedChan is a channel that is closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// idleChan is closed once no event is held.
func (q *asyncQueue) idleChan() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.held == 0 {
		return closedChan
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	return q.idle
}

// heldEvents is the number of events accepted and not finished.
func (q *asyncQueue) heldEvents() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held
}

// drain closes the queue and empties it, returning what it held.
func (q *asyncQueue) drain() []*asyncEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.pending
	q.pending, q.held, q.closed = nil, 0, true
	q.wakeIdle()
	return evs
}

// InvokeAsync queues an asynchronous invocation and returns its request id at once, as
// Lambda answers an Event invocation with 202. The event then runs in its turn on the
// environment, retried after function errors and sent to its destinations as the
// event-invoke config of req.Qualifier says.
func (e *Emulator) InvokeAsync(req Request) (string, error) {
	if len(req.Payload) > MaxAsyncPayloadBytes {
		return "", fmt.Errorf("invoking asynchronously: payload of %d bytes is more than the %d allowed", len(req.Payload), MaxAsyncPayloadBytes)
	}
	// The trace is the caller's, or one of its own under active tracing, for every attempt.
	if t := newTrace(req.TraceHeader, e.cfg.Tracing == "Active"); t.ok() {
		req.TraceHeader = t.value()
	}
	now := time.Now()
	ev := &asyncEvent{req: req, id: newUUID(), queued: now, due: now}
	if err := e.async.push(ev, e.cfg.MaxQueuedEvents); err != nil {
		return "", err
	}
	return ev.id, nil
}

// Drain waits until every asynchronous invocation accepted so far has finished: succeeded,
// or failed for good with its records sent, or been dropped by a shutdown.
func (e *Emulator) Drain(ctx context.Context) error {
	select {
	case <-e.async.idleChan():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the asynchronous invocations: %w", ctx.Err())
	}
}

// QueuedEvents is the number of asynchronous invocations accepted and not finished.
func (e *Emulator) QueuedEvents() int { return e.async.heldEvents() }

// runAsync runs the queue's events as they come due until ctx ends.
func (e *Emulator) runAsync(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ev, wait := e.async.next(time.Now())
		if ev != nil {
			if !e.attempt(ctx, ev) {
				return
			}
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-e.async.wake:
		case <-fire:
		}
	}
}

// scaled is a duration of the asynchronous clock in real time.
func (e *Emulator) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.cfg.AsyncTimeScale)
}

// attempt runs ev once if it is not too old, then retries it, or finishes it with its
// records sent. It returns false when the emulator is shutting down.
func (e *Emulator) attempt(ctx context.Context, ev *asyncEvent) bool {
	settings := e.store.Settings(ev.req.Qualifier)
	if age := time.Since(ev.queued); age > e.scaled(settings.MaxAge) {
		e.diag("asynchronous event %s: older than its maximum age of %v after %d attempts; discarded", ev.id, settings.MaxAge, ev.attempts)
		e.fail(ev, settings, destination.EventAgeExceeded)
		return true
	}
	done := make(chan struct{})
	resp, err := e.invoke(ctx, ev.req, ev.id, ev.attempts+1, done)
	if err != nil {
		// The emulator is shutting down: the event stays queued, to be reported.
		e.async.push(ev, e.cfg.MaxQueuedEvents)
		return false
	}
	// The attempt is over with its report, which its function timeout bounds: only then is
	// the event retried or finished.
	<-done
	ev.attempts++
	ev.last = resp
	if resp.FunctionError == "" {
		e.send(ev, settings.OnSuccess, destination.Success)
		e.async.finish()
		return true
	}
	// The settings may have changed during the attempt; the retry follows the new ones.
	settings = e.store.Settings(ev.req.Qualifier)
	if ev.attempts > settings.MaxRetries {
		e.diag("asynchronous event %s: failed %d attempts; retries exhausted", ev.id, ev.attempts)
		e.fail(ev, settings, destination.RetriesExhausted)
		return true
	}
	delay := retryDelays[ev.attempts-1]
	e.diag("asynchronous event %s: attempt %d failed; retrying in %v (%v on the emulator's clock)", ev.id, ev.attempts, delay, e.scaled(delay))
	ev.due = time.Now().Add(e.scaled(delay))
	e.async.push(ev, e.cfg.MaxQueuedEvents)
	return true
}

// fail finishes an event that will not succeed: its record to the on-failure destination
// and the event to the dead-letter target, as configured.
func (e *Emulator) fail(ev *asyncEvent, settings eventconfig.Settings, condition string) {
	e.send(ev, settings.OnFailure, condition)
	if target := e.cfg.DeadLetterTarget; target != "" {
		code, msg := 0, "the event was older than its maximum age before its first attempt"
		if ev.last != nil {
			code, msg = 200, errorMessage(ev.last.Payload)
		}
		if err := e.deliverer.DeadLetter(target, destination.NewDeadLetter(ev.req.Payload, ev.id, code, msg)); err != nil {
			e.diag("asynchronous event %s: dead-letter delivery failed: %v", ev.id, err)
		} else {
			e.diag("asynchronous event %s: sent to the dead-letter target %s", ev.id, target)
		}
	}
	e.async.finish()
}

// errorMessage is the errorMessage of an error document, or the document itself.
func errorMessage(doc []byte) string {
	var d struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(doc, &d) == nil && d.ErrorMessage != "" {
		return d.ErrorMessage
	}
	return string(doc)
}

// send delivers ev's invocation record to dest, if there is one.
func (e *Emulator) send(ev *asyncEvent, dest, condition string) {
	if dest == "" {
		return
	}
	rec := destination.Record{
		Version:   "1.0",
		Timestamp: time.Now().UTC().Format(destination.TimeFormat),
		RequestContext: destination.RequestContext{RequestID: ev.id, FunctionArn: e.store.FunctionARN(ev.req.Qualifier),
			Condition: condition, ApproximateInvokeCount: ev.attempts},
		RequestPayload: destination.JSON(ev.req.Payload),
	}
	if r := ev.last; r != nil {
		rec.ResponseContext = &destination.ResponseContext{StatusCode: 200, ExecutedVersion: e.cfg.FunctionVersion, FunctionError: r.FunctionError}
		rec.ResponsePayload = destination.JSON(r.Payload)
	}
	// Not under the queue's context: a record whose event has run is delivered even during
	// a shutdown, within the deliverer's own timeout. The queue waits meanwhile, as a slow
	// destination holds up Lambda's.
	if err := e.deliverer.Record(context.Background(), dest, ev.req.TraceHeader, rec); err != nil {
		e.diag("asynchronous event %s: the %s record was not delivered: %v", ev.id, condition, err)
		return
	}
	e.diag("asynchronous event %s: %s record sent to %s", ev.id, condition, dest)
}
