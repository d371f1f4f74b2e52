package telemetry

import "sync"

// Buffer holds decoded events until the extension drains them. It is bounded in bytes,
// counted as the events' wire size: when an Add takes it past the bound, the oldest events
// are dropped and counted, so the newest data (the invocation about to be flushed) survives
// a flood. Its methods are safe for concurrent use and never block on I/O.
type Buffer struct {
	mu     sync.Mutex
	events []Event
	head   int // events[:head] were dropped and are waiting to be compacted away
	bytes  int
	max    int
	stats  *Stats
	added  chan struct{}
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
	defer func() {
		select {
		case b.added <- struct{}{}:
		default:
		}
	}()
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

// Drain appends every buffered event to dst, oldest first, and empties the buffer.
func (b *Buffer) Drain(dst []Event) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst = append(dst, b.events[b.head:]...)
	clear(b.events)
	b.events = b.events[:0]
	b.head = 0
	b.bytes = 0
	return dst
}

// Len returns the number of buffered events and their size in bytes.
func (b *Buffer) Len() (events, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events) - b.head, b.bytes
}
