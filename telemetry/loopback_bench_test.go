package telemetry

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkLoopback measures ingest as the platform drives it: 1,000-event batches POSTed
// one after another on one connection over loopback to the real listener, which decodes,
// counts and buffers them, drained after each batch as the extension drains it. The
// requests are written by hand so that the client costs next to nothing.
func BenchmarkLoopback(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"function", functionLogBatch()},
		{"json", jsonLogBatch()},
		{"platform", platformBatch()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := new(Stats)
			buf := NewBuffer(64<<20, st)
			l := listen(b, ListenerConfig{Host: "127.0.0.1", MaxBodyBytes: 8 << 20}, buf, st)
			u, err := url.Parse(l.URI())
			if err != nil {
				b.Fatal(err)
			}
			conn := dial(b, u.Host)
			defer conn.Close()
			req := fmt.Appendf(nil, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.Host, len(bc.body))
			req = append(req, bc.body...)
			r := bufio.NewReader(conn)
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			var drained []Event
			for b.Loop() {
				if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("POST: %s", resp.Status)
				}
				drained = buf.Drain(drained[:0])
			}
			if got := st.Snapshot().Events; got < uint64(b.N*benchBatchSize) {
				b.Fatalf("the listener took %d events, want %d", got, b.N*benchBatchSize)
			}
			b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
