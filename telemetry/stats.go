package telemetry

import "sync/atomic"

// DropReason says why telemetry was dropped. Every drop is counted under one.
type DropReason int

const (
	// DropBufferFull: the buffer reached its byte bound and its oldest events made room.
	DropBufferFull DropReason = iota
	// DropMalformedBatch: a POST body, or its remainder after a syntax error, was not a
	// JSON array of events. Counted in batches, since the number of events is unknown.
	DropMalformedBatch
	// DropBodyTooLarge: a POST body exceeded the listener's limit. Counted in batches.
	DropBodyTooLarge
	// DropListenerPanic: handling a POST panicked and its batch was lost. Counted in batches.
	DropListenerPanic
	// DropReadError: a request could not be read (broken HTTP, a connection cut mid-body).
	// Counted in batches.
	DropReadError
	// DropNoExporter: events drained with nowhere to send them. Counted in events.
	DropNoExporter
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"buffer_full", "malformed_batch", "body_too_large", "listener_panic", "read_error", "no_exporter"}

// String returns the reason as it appears in metrics and logs.
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return "unknown"
	}
	return dropReasonNames[r]
}

// CountsBatches reports whether drops for r are counted in batches (POST bodies) rather
// than in events: the events of a body that could not be read are unknown.
func (r DropReason) CountsBatches() bool {
	return r != DropBufferFull && r != DropNoExporter
}

// DropReasons lists every reason, in a stable order.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// Signal is an OTLP signal the local receiver takes.
type Signal int

// Signals, in a stable order.
const (
	SignalTraces Signal = iota
	SignalLogs
	SignalMetrics
	numSignals
)

var signalNames = [numSignals]string{"traces", "logs", "metrics"}

// String returns the signal as it appears in metrics and logs.
func (s Signal) String() string {
	if s < 0 || s >= numSignals {
		return "unknown"
	}
	return signalNames[s]
}

// Signals lists every signal, in a stable order.
func Signals() []Signal { return []Signal{SignalTraces, SignalLogs, SignalMetrics} }

// ReceiveOutcome is what became of items sent to the local receiver.
type ReceiveOutcome int

const (
	// ReceiveAccepted: taken into the buffer.
	ReceiveAccepted ReceiveOutcome = iota
	// ReceiveInvalid: refused for good, and the sender told so (an OTLP partial success).
	ReceiveInvalid
	// ReceiveBufferFull: refused for now with 429 or RESOURCE_EXHAUSTED; the sender may
	// retry.
	ReceiveBufferFull
	numReceiveOutcomes
)

var receiveOutcomeNames = [numReceiveOutcomes]string{"accepted", "invalid", "buffer_full"}

// String returns the outcome as it appears in metrics.
func (o ReceiveOutcome) String() string {
	if o < 0 || o >= numReceiveOutcomes {
		return "unknown"
	}
	return receiveOutcomeNames[o]
}

// ReceiveOutcomes lists every outcome, in a stable order.
func ReceiveOutcomes() []ReceiveOutcome {
	return []ReceiveOutcome{ReceiveAccepted, ReceiveInvalid, ReceiveBufferFull}
}

// ReceiveFailure is why the local receiver could not read a request, whose items are
// therefore unknown.
type ReceiveFailure int

const (
	// ReceiveMalformed: the body is not the OTLP request its path and type announce.
	ReceiveMalformed ReceiveFailure = iota
	// ReceiveTooLarge: the body, compressed or not, is over the limit.
	ReceiveTooLarge
	// ReceiveUnsupported: a method, path, media type or encoding OTLP does not use.
	ReceiveUnsupported
	// ReceivePanic: handling the request panicked.
	ReceivePanic
	numReceiveFailures
)

var receiveFailureNames = [numReceiveFailures]string{"malformed", "too_large", "unsupported", "panic"}

// String returns the failure as it appears in metrics.
func (f ReceiveFailure) String() string {
	if f < 0 || f >= numReceiveFailures {
		return "unknown"
	}
	return receiveFailureNames[f]
}

// ReceiveFailures lists every failure, in a stable order.
func ReceiveFailures() []ReceiveFailure {
	return []ReceiveFailure{ReceiveMalformed, ReceiveTooLarge, ReceiveUnsupported, ReceivePanic}
}

// Stats counts what the listener and the buffer did. Its methods are safe for concurrent
// use; the zero value is ready.
type Stats struct {
	batches      atomic.Uint64
	events       atomic.Uint64
	bytes        atomic.Uint64
	untyped      atomic.Uint64
	rejected     atomic.Uint64
	acceptErrors atomic.Uint64
	dropped      [numDropReasons]atomic.Uint64
	droppedSize  [numDropReasons]atomic.Uint64
	received     [numSignals][numReceiveOutcomes]atomic.Uint64
	failed       [numReceiveFailures]atomic.Uint64
}

// Counts is a snapshot of Stats.
type Counts struct {
	// Batches is the number of POST bodies read and decoded, whatever became of their
	// events. A request that was refused (Rejected) is not a batch.
	Batches uint64
	// Events is the number of events decoded, typed or not.
	Events uint64
	// Bytes is the total size of the POST bodies received.
	Bytes uint64
	// Untyped is the number of decoded events kept as *Raw (unknown type or a record of the
	// wrong shape). They are kept, not dropped.
	Untyped uint64
	// Rejected is the number of requests answered with an error status: a method other than
	// POST, a body over the limit, a request that could not be read, or a connection over
	// the listener's MaxConns.
	Rejected uint64
	// AcceptErrors is the number of failed accepts of a connection, each retried after a pause.
	AcceptErrors uint64
	// Dropped is indexed by DropReason: events for DropBufferFull, batches for the others.
	Dropped [numDropReasons]uint64
	// DroppedBytes is indexed by DropReason: the wire bytes those drops held.
	DroppedBytes [numDropReasons]uint64
	// Received is indexed by Signal and ReceiveOutcome: the items sent to the local
	// receiver and what became of them.
	Received [numSignals][numReceiveOutcomes]uint64
	// ReceiveFailed is indexed by ReceiveFailure: the requests the local receiver could not
	// read.
	ReceiveFailed [numReceiveFailures]uint64
}

// Snapshot returns the current counts.
func (s *Stats) Snapshot() Counts {
	c := Counts{
		Batches:      s.batches.Load(),
		Events:       s.events.Load(),
		Bytes:        s.bytes.Load(),
		Untyped:      s.untyped.Load(),
		Rejected:     s.rejected.Load(),
		AcceptErrors: s.acceptErrors.Load(),
	}
	for i := range c.Dropped {
		c.Dropped[i] = s.dropped[i].Load()
		c.DroppedBytes[i] = s.droppedSize[i].Load()
	}
	for i := range c.Received {
		for j := range c.Received[i] {
			c.Received[i][j] = s.received[i][j].Load()
		}
	}
	for i := range c.ReceiveFailed {
		c.ReceiveFailed[i] = s.failed[i].Load()
	}
	return c
}

// Receive counts n items of sig sent to the local receiver, with their outcome.
func (s *Stats) Receive(sig Signal, o ReceiveOutcome, n int) {
	s.received[sig][o].Add(uint64(n))
}

// Fail counts a request the local receiver could not read.
func (s *Stats) Fail(f ReceiveFailure) { s.failed[f].Add(1) }

// Drop counts n items (events or batches, per the reason) holding size bytes.
func (s *Stats) Drop(r DropReason, n, size int) {
	s.dropped[r].Add(uint64(n))
	s.droppedSize[r].Add(uint64(size))
}
