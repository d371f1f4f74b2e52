package exporters

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// faultBackend answers OTLP/HTTP requests with the status its script gives for each call.
type faultBackend struct {
	*httptest.Server
	calls atomic.Int32
}

func newFaultBackend(t *testing.T, answer func(call int, w http.ResponseWriter)) *faultBackend {
	return newFaultBackendConns(t, answer, nil)
}

// newFaultBackendConns also reports each connection's state changes to connState.
func newFaultBackendConns(t *testing.T, answer func(call int, w http.ResponseWriter), connState func(net.Conn, http.ConnState)) *faultBackend {
	t.Helper()
	b := &faultBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(int(b.calls.Add(1)), w)
	}))
	b.Config.ConnState = connState
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func httpExporter(url string) *OTLP {
	var ts [numSignals]Target
	for _, s := range Signals {
		ts[s] = Target{Protocol: HTTPProtobuf, URL: url + signalInfo[s].path, Timeout: 5 * time.Second}
	}
	return NewOTLP(ts)
}

func TestHTTPFaults(t *testing.T) {
	logs := sample()[Logs]
	tests := []struct {
		name   string
		budget time.Duration
		answer func(call int, w http.ResponseWriter)
		// want
		accepted, rejected, calls int
		retryable                 bool
		minElapsed                time.Duration
	}{
		{name: "503 then success", budget: 5 * time.Second,
			answer: func(call int, w http.ResponseWriter) {
				if call == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}, accepted: 5, calls: 2},
		{name: "429 with Retry-After is honoured", budget: 5 * time.Second,
			answer: func(call int, w http.ResponseWriter) {
				if call == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
				}
			}, accepted: 5, calls: 2, minElapsed: time.Second},
		{name: "Retry-After past the budget keeps the data", budget: 300 * time.Millisecond,
			answer: func(call int, w http.ResponseWriter) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
			}, calls: 1, retryable: true},
		{name: "always 500 is final", budget: 5 * time.Second,
			answer:   func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) },
			rejected: 5, calls: 1},
		{name: "always 503 retries until the budget", budget: 400 * time.Millisecond,
			answer:    func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
			retryable: true},
		{name: "partial success", budget: 5 * time.Second,
			answer: func(_ int, w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/x-protobuf")
				// partial_success { rejected_log_records: 2, error_message: "too old" }
				w.Write([]byte{0x0a, 0x0b, 0x08, 0x02, 0x12, 0x07, 't', 'o', 'o', ' ', 'o', 'l', 'd'})
			}, accepted: 3, rejected: 2, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFaultBackend(t, tt.answer)
			exp := httpExporter(b.URL)
			defer exp.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), tt.budget)
			defer cancel()
			start := time.Now()
			res := exp.Export(ctx, logs)
			elapsed := time.Since(start)
			if res.Accepted != tt.accepted || res.Rejected != tt.rejected || res.Retryable != tt.retryable {
				t.Errorf("result %+v; want accepted %d, rejected %d, retryable %v", res, tt.accepted, tt.rejected, tt.retryable)
			}
			if (res.Err == nil) != (tt.accepted == 5) {
				t.Errorf("error %v", res.Err)
			}
			if tt.retryable && !errors.Is(res.Err, ErrBudget) {
				t.Errorf("a retryable result's error does not say the budget ran out: %v", res.Err)
			}
			if tt.calls > 0 && int(b.calls.Load()) != tt.calls {
				t.Errorf("%d calls, want %d", b.calls.Load(), tt.calls)
			}
			if dl, _ := ctx.Deadline(); time.Now().After(dl.Add(50 * time.Millisecond)) {
				t.Errorf("the export ran %v, past its %v budget", elapsed, tt.budget)
			}
			if elapsed < tt.minElapsed {
				t.Errorf("the export took %v: the backend's Retry-After of %v was not honoured", elapsed, tt.minElapsed)
			}
		})
	}
}

// TestSlowBackendStaysInBudget: a backend slower than the budget costs the budget, no more,
// and the data is kept for later.
func TestSlowBackendStaysInBudget(t *testing.T) {
	release := make(chan struct{})
	b := newFaultBackend(t, func(int, http.ResponseWriter) { <-release })
	defer close(release)
	exp := httpExporter(b.URL)
	defer exp.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := exp.Export(ctx, sample()[Traces])
	if !res.Retryable || res.Accepted != 0 {
		t.Errorf("result %+v, want retryable", res)
	}
	if dl, _ := ctx.Deadline(); time.Now().After(dl.Add(50 * time.Millisecond)) {
		t.Error("the export outlived its budget")
	}
}

// TestConnectionRefusedIsRetryable: a backend that is not there yet keeps the data.
func TestConnectionRefusedIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	exp := httpExporter("http://" + addr)
	defer exp.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if res := exp.Export(ctx, sample()[Metrics]); !res.Retryable || res.Err == nil {
		t.Errorf("result %+v, want retryable", res)
	}
}

// TestStaleConnectionRetriedAtOnce: a connection that died while the environment was
// frozen fails the next request; the exporter retries on a fresh connection at once.
func TestStaleConnectionRetriedAtOnce(t *testing.T) {
	idle := make(chan net.Conn, 4)
	b := newFaultBackendConns(t, func(int, http.ResponseWriter) {}, func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			select {
			case idle <- c:
			default:
			}
		}
	})
	exp := httpExporter(b.URL)
	defer exp.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res := exp.Export(ctx, sample()[Logs]); res.Err != nil {
		t.Fatal(res.Err)
	}
	// The server side of the idle connection goes away without a word, as after a thaw.
	select {
	case c := <-idle:
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	case <-ctx.Done():
		t.Fatal("the connection never went idle")
	}
	if res := exp.Export(ctx, sample()[Logs]); res.Err != nil || res.Accepted != 5 {
		t.Fatalf("after the connection died: %+v", res)
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("the backend saw %d requests, want 2", n)
	}
}

func TestGRPCStatusClassification(t *testing.T) {
	// google.rpc.Status{code: 8, details: [Any{type_url: ".../google.rpc.RetryInfo", value: RetryInfo{retry_delay: {seconds: 2, nanos: 5e8}}}]}
	retry := []byte{0x0a, 0x08, 0x08, 0x02, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01}
	typeURL := "type.googleapis.com/google.rpc.RetryInfo"
	anyMsg := append(append([]byte{0x0a, byte(len(typeURL))}, typeURL...), append([]byte{0x12, byte(len(retry))}, retry...)...)
	status := append([]byte{0x08, 0x08, 0x1a, byte(len(anyMsg))}, anyMsg...)
	d, ok := retryInfo(base64.StdEncoding.EncodeToString(status))
	if !ok || d != 2500*time.Millisecond {
		t.Errorf("retryInfo = %v, %v; want 2.5s", d, ok)
	}
	for code, retryable := range map[int]bool{
		codeUnavailable: true, codeDeadlineExceeded: true, codeAborted: true, codeCanceled: true,
		codeInternal: false, codeUnauthenticated: false, codeUnimplemented: false, codeResourceExhausted: false,
	} {
		if a := grpcOutcome(code, 0, false, errors.New("x"), 3); a.retry != retryable {
			t.Errorf("code %d: retry %v, want %v", code, a.retry, retryable)
		}
	}
	if a := grpcOutcome(codeResourceExhausted, time.Second, true, errors.New("x"), 3); !a.retry || a.retryAfter != time.Second {
		t.Errorf("RESOURCE_EXHAUSTED with RetryInfo: %+v", a)
	}
}
