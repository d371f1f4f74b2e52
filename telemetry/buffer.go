package telemetry

import "sync"

// Buffer holds decoded events, and the OTLP requests of the local receiver, until the
// extension drains them. It is bounded in bytes, counted as their wire size. When an Add
// takes it past the bound, the oldest events are dropped and counted, so the newest data
// (the invocation about to be flushed) survives a flood. A received request is refused
// instead when it does not fit (its sender, which was told, can retry), and once taken it
// is never dropped by the buffer. Its methods are safe for concurrent use and never block
// on I/O.
type Buffer struct {
	mu       sync.Mutex
	events   []Event
	head     int // events[:head] were dropped and are waiting to be compacted away
	bytes    int // of events and received
	received []Received
	max      int
	stats    *Stats
	added    chan struct{}
}

// NewBuffer returns a buffer bounded to maxBytes that counts its drops in stats.
func NewBuffer(maxBytes int, stats *Stats) *Buffer {
	return &Buffer{max: maxBytes, stats: stats, added: make(chan struct{}, 1)}
}

// Added returns a channel that receives after events were added. Arrivals while nobody
// waits are folded into one, so a receiver should Drain and then wait again.
func (b *Buffer) Added() <-chan struct{} { return b.added }

// Add appends events, dropping the oldest buffered events while the buffer is over its
// bound. It returns how many events were dropped.
func (b *Buffer) Add(events ...Event) int {
	if len(events) == 0 {
		return 0
	}
	defer b.signal()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, events...)
	for _, e := range events {
		b.bytes += e.Size
	}
	dropped, droppedBytes := 0, 0
	for b.bytes > b.max && b.head < len(b.events) {
		size := b.events[b.head].Size
		b.events[b.head] = Event{}
		b.head++
		b.bytes -= size
		dropped++
		droppedBytes += size
	}
	if dropped > 0 {
		b.stats.Drop(DropBufferFull, dropped, droppedBytes)
	}
	if b.head > len(b.events)/2 {
		n := copy(b.events, b.events[b.head:])
		clear(b.events[n:])
		b.events = b.events[:n]
		b.head = 0
	}
	return dropped
}

func (b *Buffer) signal() {
	select {
	case b.added <- struct{}{}:
	default:
	}
}

// Offer adds a received request if it fits within the bound, and reports whether it did.
func (b *Buffer) Offer(r Received) bool {
	b.mu.Lock()
	fits := b.bytes+r.Size <= b.max
	if fits {
		b.received = append(b.received, r)
		b.bytes += r.Size
	}
	b.mu.Unlock()
	if fits {
		b.signal()
	}
	return fits
}

// Drain appends every buffered event to dst, oldest first, and empties the buffer of
// events. The received requests stay: take them with DrainReceived.
func (b *Buffer) Drain(dst []Event) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst = append(dst, b.events[b.head:]...)
	for _, e := range b.events[b.head:] {
		b.bytes -= e.Size
	}
	clear(b.events)
	b.events = b.events[:0]
	b.head = 0
	return dst
}

// DrainReceived appends every received request to dst, oldest first, and lets them go.
func (b *Buffer) DrainReceived(dst []Received) []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst = append(dst, b.received...)
	for _, r := range b.received {
		b.bytes -= r.Size
	}
	clear(b.received)
	b.received = b.received[:0]
	return dst
}

// Len returns the number of buffered events and received requests, and their size in
// bytes.
func (b *Buffer) Len() (n, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events) - b.head + len(b.received), b.bytes
}
