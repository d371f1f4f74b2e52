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
