package emulator

import (
	"context"
	"testing"
)

// BenchmarkWarmInvoke measures a warm invocation of the example function through the
// emulator: the Runtime API round trip and the platform events, with no extension and with
// one subscribed extension (the recorder) receiving every event over HTTP.
func BenchmarkWarmInvoke(b *testing.B) {
	for _, tc := range []struct {
		name string
		exts []string
	}{{"no extension", nil}, {"subscribed extension", []string{"recorder"}}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newFixture(b, tc.exts...).start(b)
			ctx := context.Background()
			if err := e.Init(ctx); err != nil {
				b.Fatal(err)
			}
			req := Request{Payload: []byte(`{"action":"ok"}`)}
			b.ResetTimer()
			for b.Loop() {
				if resp, err := e.Invoke(ctx, req); err != nil || resp.FunctionError != "" {
					b.Fatalf("invoke: %v %s", err, resp.Payload)
				}
			}
		})
	}
}

// BenchmarkAsyncInvoke measures an asynchronous invocation of the example function through
// the queue, from InvokeAsync to the end of the attempt, to compare with BenchmarkWarmInvoke:
// the difference is the queue's own cost.
func BenchmarkAsyncInvoke(b *testing.B) {
	f := newFixture(b)
	f.cfg.MaxQueuedEvents = 1 << 20
	e := f.start(b)
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		b.Fatal(err)
	}
	req := Request{Payload: []byte(`{"action":"ok"}`)}
	b.ResetTimer()
	for range b.N {
		if _, err := e.InvokeAsync(req); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if recs := e.Records(); len(recs) != b.N {
		b.Fatalf("%d invocations ran, want %d", len(recs), b.N)
	}
}
