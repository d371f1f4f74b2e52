package otlptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Answer is what a Front does with one request.
type Answer struct {
	// Status, when not 0, is answered instead of passing the request on.
	Status int
	// RetryAfter is the Retry-After header of an injected Status.
	RetryAfter string
	// Delay holds the request this long before answering or passing it on. A request whose
	// client gives up meanwhile is not passed on: the backend never sees it, as when a slow
	// backend is cut off before it takes the data.
	Delay time.Duration
}

// Fault picks the answer to the n-th request (from 1) that reaches a Front.
type Fault func(n int, r *http.Request) Answer

// Front is a fault-injecting proxy in front of a Receiver: exporters are pointed at it, and
// it passes requests on, or answers with an error, holds them, or stops listening
// altogether, as a test tells it. It speaks HTTP/1.1 and unencrypted HTTP/2, so OTLP/HTTP
// and OTLP/gRPC both go through it.
type Front struct {
	// URL is the base URL to export to: http://127.0.0.1:port.
	URL string

	t     testing.TB
	addr  string
	proxy *httputil.ReverseProxy
	tr    *http.Transport

	mu    sync.Mutex
	srv   *http.Server
	done  chan struct{} // closed when srv's Serve has returned
	fault Fault
	// n numbers the requests the current fault sees.
	n     int
	stats FrontStats
	// retryAt is when the last injected Retry-After allows the next request.
	retryAt time.Time
	// changed is signalled whenever stats change.
	changed chan struct{}
}

// FrontStats counts what a Front did.
type FrontStats struct {
	// Requests counts the requests that reached the front.
	Requests int
	// Forwarded counts those passed on and answered by the receiver.
	Forwarded int
	// Injected counts the answers the front made up, by status.
	Injected map[int]int
	// Abandoned counts held requests whose client gave up before they were passed on.
	Abandoned int
	// Early counts requests that came before an injected Retry-After had passed.
	Early int
	// Down counts the times the front stopped listening.
	Down int
}

// StartFront runs a Front on a free loopback port, passing requests on to target: the
// receiver's HTTPEndpoint, or "http://" and its GRPCEndpoint for OTLP/gRPC.
func StartFront(t testing.TB, target string) *Front {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("front target %q: %v", target, err)
	}
	f := &Front{t: t, changed: make(chan struct{}, 1)}
	f.stats.Injected = map[int]int{}
	// Both protocols to the receiver: HTTP/1.1 for OTLP/HTTP, h2c for gRPC, chosen by what
	// the client spoke to the front.
	p := new(http.Protocols)
	p.SetHTTP1(true)
	f.tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, ForceAttemptHTTP2: false, Protocols: p}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	h2tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, Protocols: h2}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
		},
		Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.ProtoMajor == 2 {
				return h2tr.RoundTrip(r)
			}
			return f.tr.RoundTrip(r)
		}),
		// The receiver failing to answer is a backend fault like any other, answered as a
		// gateway does; the proxy's default would log it too.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("front: %v", err)
	}
	f.addr = l.Addr().String()
	f.URL = "http://" + f.addr
	f.serve(l)
	t.Cleanup(func() {
		f.Down()
		f.tr.CloseIdleConnections()
		h2tr.CloseIdleConnections()
	})
	return f
}

type roundTripper func(*http.Request) (*http.Response, error)

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return rt(r) }

// Addr is the front's host:port, for an OTLP/gRPC endpoint.
func (f *Front) Addr() string { return f.addr }

// SetFault makes fault pick the answer to every later request; nil passes everything on.
// Requests are numbered from 1 again.
func (f *Front) SetFault(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.n = fault, 0
}

// Stats returns the counts so far.
func (f *Front) Stats() FrontStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Injected = make(map[int]int, len(f.stats.Injected))
	for k, v := range f.stats.Injected {
		s.Injected[k] = v
	}
	return s
}

// WaitFor waits until cond holds for the front's counts or ctx ends, reporting whether it
// held.
func (f *Front) WaitFor(ctx context.Context, cond func(FrontStats) bool) bool {
	for !cond(f.Stats()) {
		select {
		case <-f.changed:
		case <-ctx.Done():
			return cond(f.Stats())
		}
	}
	return true
}

// update changes the counts under the lock and tells WaitFor.
func (f *Front) update(change func(s *FrontStats)) {
	f.mu.Lock()
	change(&f.stats)
	f.mu.Unlock()
	f.notify()
}

func (f *Front) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Down stops listening and cuts every connection, so that clients are refused until Up: the
// backend is gone. Held requests are abandoned.
func (f *Front) Down() {
	f.mu.Lock()
	srv, done := f.srv, f.done
	f.srv, f.done = nil, nil
	f.mu.Unlock()
	if srv == nil {
		return
	}
	f.update(func(s *FrontStats) { s.Down++ })
	// Close, not Shutdown: a backend that goes away does not finish its answers.
	if err := srv.Close(); err != nil {
		f.t.Errorf("front: closing: %v", err)
	}
	<-done
}

// Up listens again on the same port, after Down.
func (f *Front) Up() error {
	f.mu.Lock()
	up := f.srv != nil
	f.mu.Unlock()
	if up {
		return nil
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("front: listening again on %s: %w", f.addr, err)
	}
	f.serve(l)
	return nil
}

func (f *Front) serve(l net.Listener) {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(f.handle), Protocols: p, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	f.mu.Lock()
	f.srv, f.done = srv, done
	f.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.t.Errorf("front: serving: %v", err)
		}
	}()
}

func (f *Front) handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f.mu.Lock()
	f.stats.Requests++
	f.n++
	n, fault := f.n, f.fault
	if now.Before(f.retryAt) {
		f.stats.Early++
	}
	f.mu.Unlock()
	f.notify()
	var a Answer
	if fault != nil {
		a = fault(n, r)
	}
	if a.Delay > 0 {
		// The server notices a client that gives up only once the body has been read.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.abandoned()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(a.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			f.abandoned()
			return
		}
	}
	if a.Status != 0 {
		f.mu.Lock()
		f.stats.Injected[a.Status]++
		if secs, err := strconv.Atoi(a.RetryAfter); err == nil {
			f.retryAt = time.Now().Add(time.Duration(secs) * time.Second)
		}
		f.mu.Unlock()
		f.notify()
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		w.WriteHeader(a.Status)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	f.proxy.ServeHTTP(rec, r)
	if rec.status == http.StatusOK {
		f.update(func(s *FrontStats) { s.Forwarded++ })
	}
}

func (f *Front) abandoned() { f.update(func(s *FrontStats) { s.Abandoned++ }) }

// statusRecorder notes the status the receiver answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets the proxy pass gRPC answers on as they come.
func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// Unwrap gives http.ResponseController the real writer, for trailers.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
