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
	return c
}

// Drop counts n items (events or batches, per the reason) holding size bytes.
func (s *Stats) Drop(r DropReason, n, size int) {
	s.dropped[r].Add(uint64(n))
	s.droppedSize[r].Add(uint64(size))
}
