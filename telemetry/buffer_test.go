package telemetry

import (
	"sync"
	"testing"
)

func ev(name string, size int) Event {
	return Event{Type: TypeFunction, Record: &Log{Text: name}, Size: size}
}

func texts(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Record.(*Log).Text
	}
	return out
}

func TestBufferBound(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		adds        [][]Event
		wantKept    []string
		wantDropped uint64
		wantBytes   uint64
	}{
		{"fits", 100, [][]Event{{ev("a", 40), ev("b", 40)}}, []string{"a", "b"}, 0, 0},
		{"exactly full", 80, [][]Event{{ev("a", 40)}, {ev("b", 40)}}, []string{"a", "b"}, 0, 0},
		{"oldest dropped first", 100, [][]Event{{ev("a", 40), ev("b", 40)}, {ev("c", 40)}}, []string{"b", "c"}, 1, 40},
		{"a batch larger than the bound keeps its newest", 100, [][]Event{{ev("a", 30)}, {ev("b", 60), ev("c", 60)}}, []string{"c"}, 2, 90},
		{"one event larger than the bound", 50, [][]Event{{ev("a", 10)}, {ev("huge", 60)}}, []string{}, 2, 70},
		{"many small drops", 10, [][]Event{{ev("1", 3), ev("2", 3), ev("3", 3)}, {ev("4", 3), ev("5", 3)}, {ev("6", 3)}}, []string{"4", "5", "6"}, 3, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st Stats
			b := NewBuffer(tt.max, &st)
			for _, a := range tt.adds {
				b.Add(a...)
			}
			n, size := b.Len()
			got := texts(b.Drain(nil))
			if len(got) != len(tt.wantKept) || n != len(got) {
				t.Fatalf("kept %v (Len %d), want %v", got, n, tt.wantKept)
			}
			for i := range got {
				if got[i] != tt.wantKept[i] {
					t.Fatalf("kept %v, want %v", got, tt.wantKept)
				}
			}
			if size > tt.max {
				t.Errorf("held %d bytes over a bound of %d", size, tt.max)
			}
			c := st.Snapshot()
			if c.Dropped[DropBufferFull] != tt.wantDropped || c.DroppedBytes[DropBufferFull] != tt.wantBytes {
				t.Errorf("dropped %d events / %d bytes, want %d / %d", c.Dropped[DropBufferFull], c.DroppedBytes[DropBufferFull], tt.wantDropped, tt.wantBytes)
			}
			if n, size := b.Len(); n != 0 || size != 0 {
				t.Errorf("after Drain: %d events, %d bytes", n, size)
			}
		})
	}
}

// TestBufferConcurrent checks under -race that adders and a drainer together lose nothing
// uncounted: every event added is drained or counted as dropped.
func TestBufferConcurrent(t *testing.T) {
	var st Stats
	b := NewBuffer(500, &st)
	const adders, perAdder = 4, 2000
	var wg sync.WaitGroup
	for range adders {
		wg.Go(func() {
			for range perAdder {
				b.Add(ev("x", 7))
			}
		})
	}
	drained := 0
	added := stop(&wg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var dst []Event
		for {
			dst = b.Drain(dst[:0])
			drained += len(dst)
			select {
			case <-added:
				drained += len(b.Drain(nil))
				return
			default:
			}
		}
	}()
	<-done
	if got := drained + int(st.Snapshot().Dropped[DropBufferFull]); got != adders*perAdder {
		t.Errorf("drained+dropped = %d, want %d", got, adders*perAdder)
	}
}

// stop returns a channel closed once wg is done.
func stop(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// TestBufferReceived checks that a received request is taken only when it fits, is never
// dropped to make room for events, and shares the bound with them.
func TestBufferReceived(t *testing.T) {
	var st Stats
	b := NewBuffer(100, &st)
	b.Add(ev("a", 30))
	if !b.Offer(Received{Items: 1, Size: 50}) {
		t.Fatal("a request that fits was refused")
	}
	if b.Offer(Received{Items: 1, Size: 21}) {
		t.Fatal("a request past the bound was taken")
	}
	if n, size := b.Len(); n != 2 || size != 80 {
		t.Fatalf("Len = %d, %d; want 2, 80", n, size)
	}
	// A flood of events drops the oldest events, not the request that was taken.
	b.Add(ev("b", 30), ev("c", 30))
	if got := texts(b.Drain(nil)); len(got) != 1 || got[0] != "c" {
		t.Errorf("events kept = %v, want [c]", got)
	}
	if c := st.Snapshot(); c.Dropped[DropBufferFull] != 2 {
		t.Errorf("dropped %d events, want 2", c.Dropped[DropBufferFull])
	}
	if n, size := b.Len(); n != 1 || size != 50 {
		t.Fatalf("after draining the events Len = %d, %d; want 1, 50", n, size)
	}
	if got := b.DrainReceived(nil); len(got) != 1 || got[0].Size != 50 {
		t.Errorf("received = %+v, want the one request", got)
	}
	if n, size := b.Len(); n != 0 || size != 0 {
		t.Errorf("after draining everything Len = %d, %d", n, size)
	}
	select {
	case <-b.Added():
	default:
		t.Error("Offer and Add did not signal Added")
	}
}
