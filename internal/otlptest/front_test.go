package otlptest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// post sends one OTLP/HTTP logs request with a record to the front and returns the status,
// or the error of a request that got no answer.
func post(ctx context.Context, c *http.Client, url string) (int, error) {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	body, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/logs", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestFront(t *testing.T) {
	rcv := Start(t)
	f := StartFront(t, rcv.HTTPEndpoint)
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	steps := []struct {
		name   string
		fault  Fault
		down   bool
		status int
		// refused says the request gets no answer: the connection is refused.
		refused bool
		// timeout, when set, is the client's, for a held request.
		timeout time.Duration
	}{
		{name: "passed on", status: http.StatusOK},
		{name: "injected 503", fault: func(int, *http.Request) Answer { return Answer{Status: http.StatusServiceUnavailable} }, status: http.StatusServiceUnavailable},
		{name: "injected 429 with Retry-After", fault: func(int, *http.Request) Answer {
			return Answer{Status: http.StatusTooManyRequests, RetryAfter: "60"}
		}, status: http.StatusTooManyRequests},
		{name: "down", down: true, refused: true},
		{name: "up again", status: http.StatusOK},
		{name: "held past the client's patience", fault: func(int, *http.Request) Answer { return Answer{Delay: time.Minute} },
			refused: true, timeout: 100 * time.Millisecond},
	}
	for _, s := range steps {
		f.SetFault(s.fault)
		if s.down {
			f.Down()
			// A pooled connection would meet its end (EOF); a new one is refused.
			c.CloseIdleConnections()
		} else if err := f.Up(); err != nil {
			t.Fatal(err)
		}
		timeout := s.timeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		rctx, rcancel := context.WithTimeout(ctx, timeout)
		status, err := post(rctx, c, f.URL)
		rcancel()
		switch {
		case s.refused && err == nil:
			t.Errorf("%s: answered %d, want no answer", s.name, status)
		case s.down && !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s: %v, want the connection refused", s.name, err)
		case !s.refused && (err != nil || status != s.status):
			t.Errorf("%s: %d %v, want %d", s.name, status, err, s.status)
		}
	}
	// The held request was abandoned, not passed on; the request after the 429 came before
	// its Retry-After.
	if !rcv.WaitFor(ctx, func() bool { _, logs, _ := rcv.Counts(); return logs == 2 }) {
		_, logs, _ := rcv.Counts()
		t.Errorf("the receiver has %d log records, want 2", logs)
	}
	stats := f.Stats()
	want := FrontStats{Requests: 5, Forwarded: 2, Abandoned: 1, Early: 2, Down: 1,
		Injected: map[int]int{http.StatusServiceUnavailable: 1, http.StatusTooManyRequests: 1}}
	if stats.Requests != want.Requests || stats.Forwarded != want.Forwarded || stats.Early != want.Early ||
		stats.Down != want.Down || len(stats.Injected) != 2 ||
		stats.Injected[http.StatusServiceUnavailable] != 1 || stats.Injected[http.StatusTooManyRequests] != 1 {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
	// The held request's handler learns that its client is gone only when the server sees
	// the connection close, after the client has returned.
	if !f.WaitFor(ctx, func(s FrontStats) bool { return s.Abandoned == 1 }) {
		t.Errorf("the held request was not abandoned: %+v", f.Stats())
	}
}
