// Package sink is the OTLP receiver embedded in lambda-emulator. The extension under test
// exports to it over OTLP/HTTP on loopback, as it would to a collector, so that a run needs
// no backend: the sink keeps what arrives, lets the emulator wait for it, can save each
// request as an OTLP JSON line for replay, and renders it all as a report for the user.
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	// maxBody bounds a request body, compressed and decompressed alike: far above one
	// export of an extension, low enough that a runaway client cannot exhaust memory.
	maxBody = 32 << 20
	// readHeaderTimeout frees a connection whose client stalls before its request.
	readHeaderTimeout = 10 * time.Second
)

// Options configure a Sink.
type Options struct {
	// JSONLines, when non-nil, receives every accepted request as one line of OTLP JSON
	// (the collector file exporter's format: {"resourceSpans":[...]}, {"resourceLogs":[...]},
	// {"resourceMetrics":[...]}), newline-terminated, written under a lock so lines never
	// interleave.
	JSONLines io.Writer
	// OnReceive, when non-nil, is called after each accepted request with its signal
	// ("traces", "logs" or "metrics") and item count, for a one-line live note. It runs on
	// the request's goroutine, so it must not block long.
	OnReceive func(signal string, items int)
}

// Counts is what was received so far.
type Counts struct{ Requests, Spans, LogRecords, DataPoints int }

// Sink is a running OTLP/HTTP receiver. Its methods are safe for concurrent use.
type Sink struct {
	opts     Options
	srv      *http.Server
	endpoint string
	// served is closed once Serve has returned serveErr.
	served   chan struct{}
	serveErr error

	mu      sync.Mutex
	counts  Counts
	changed chan struct{} // closed and replaced whenever counts change, to wake WaitFor
	traces  ptrace.Traces
	logs    plog.Logs
	metrics pmetric.Metrics

	lineMu    sync.Mutex
	lineErr   error // the first failure to save a JSON line
	linesDone bool  // set by Close, after which the caller may close JSONLines
}

// Start listens on addr (host:port, port 0 picks a free one) and serves OTLP/HTTP until
// Close. ctx bounds only the setup.
func Start(ctx context.Context, addr string, opts Options) (*Sink, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for OTLP on %s: %w", addr, err)
	}
	s := &Sink{
		opts:     opts,
		endpoint: "http://" + ln.Addr().String(),
		served:   make(chan struct{}),
		changed:  make(chan struct{}),
		traces:   ptrace.NewTraces(),
		logs:     plog.NewLogs(),
		metrics:  pmetric.NewMetrics(),
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		defer close(s.served)
		s.serveErr = s.srv.Serve(ln)
	}()
	return s, nil
}

// Endpoint is the base URL to give an exporter as OTEL_EXPORTER_OTLP_ENDPOINT, e.g.
// "http://127.0.0.1:4318".
func (s *Sink) Endpoint() string { return s.endpoint }

// Close stops the server, waiting for in-flight requests at most until ctx ends. Once it
// returns, JSONLines is not written again, so the caller may close it. Close also reports
// the first failure to write JSONLines, since requests were accepted regardless and a
// saved run with gaps must not pass for a complete one.
func (s *Sink) Close(ctx context.Context) error {
	var errs []error
	if err := s.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("waiting for the OTLP sink's requests: %w", err))
	}
	if err := s.srv.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the OTLP sink: %w", err))
	}
	<-s.served
	if !errors.Is(s.serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serving OTLP: %w", s.serveErr))
	}
	s.lineMu.Lock()
	s.linesDone = true
	errs = append(errs, s.lineErr)
	s.lineMu.Unlock()
	return errors.Join(errs...)
}

// Counts is what was received so far.
func (s *Sink) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// WaitFor blocks until cond(s.Counts()) is true or ctx ends, and then returns ctx's error
// wrapped.
func (s *Sink) WaitFor(ctx context.Context, cond func(Counts) bool) error {
	for {
		s.mu.Lock()
		c, changed := s.counts, s.changed
		s.mu.Unlock()
		if cond(c) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for OTLP data, having received %+v: %w", c, ctx.Err())
		}
	}
}

// Received returns copies of everything received, merged: all spans, all log records,
// all metrics, in arrival order.
func (s *Sink) Received() (ptrace.Traces, plog.Logs, pmetric.Metrics) {
	_, td, ld, md := s.snapshot()
	return td, ld, md
}

// snapshot copies the counts and the data at one instant, so that they agree.
func (s *Sink) snapshot() (Counts, ptrace.Traces, plog.Logs, pmetric.Metrics) {
	td, ld, md := ptrace.NewTraces(), plog.NewLogs(), pmetric.NewMetrics()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traces.CopyTo(td)
	s.logs.CopyTo(ld)
	s.metrics.CopyTo(md)
	return s.counts, td, ld, md
}

// signal says how the sink decodes, counts, saves and keeps one signal's requests.
type signal[T any] struct {
	name        string
	proto, json func([]byte) (T, error)
	jsonLine    func(T) ([]byte, error)
	items       func(T) int
	// keep moves a request's data and count into the sink; it runs under s.mu.
	keep func(data T, items int)
}

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	// Patterns with a method make the mux answer 405 with an Allow header for other methods.
	mux.Handle("POST /v1/traces", handler(s, signal[ptrace.Traces]{
		name:     "traces",
		proto:    new(ptrace.ProtoUnmarshaler).UnmarshalTraces,
		json:     new(ptrace.JSONUnmarshaler).UnmarshalTraces,
		jsonLine: new(ptrace.JSONMarshaler).MarshalTraces,
		items:    ptrace.Traces.SpanCount,
		keep: func(td ptrace.Traces, n int) {
			td.ResourceSpans().MoveAndAppendTo(s.traces.ResourceSpans())
			s.counts.Spans += n
		},
	}))
	mux.Handle("POST /v1/logs", handler(s, signal[plog.Logs]{
		name:     "logs",
		proto:    new(plog.ProtoUnmarshaler).UnmarshalLogs,
		json:     new(plog.JSONUnmarshaler).UnmarshalLogs,
		jsonLine: new(plog.JSONMarshaler).MarshalLogs,
		items:    plog.Logs.LogRecordCount,
		keep: func(ld plog.Logs, n int) {
			ld.ResourceLogs().MoveAndAppendTo(s.logs.ResourceLogs())
			s.counts.LogRecords += n
		},
	}))
	mux.Handle("POST /v1/metrics", handler(s, signal[pmetric.Metrics]{
		name:     "metrics",
		proto:    new(pmetric.ProtoUnmarshaler).UnmarshalMetrics,
		json:     new(pmetric.JSONUnmarshaler).UnmarshalMetrics,
		jsonLine: new(pmetric.JSONMarshaler).MarshalMetrics,
		items:    pmetric.Metrics.DataPointCount,
		keep: func(md pmetric.Metrics, n int) {
			md.ResourceMetrics().MoveAndAppendTo(s.metrics.ResourceMetrics())
			s.counts.DataPoints += n
		},
	}))
	return mux
}

// handler serves one signal's export requests.
func handler[T any](s *Sink, sig signal[T]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asJSON, err := isJSON(r.Header.Get("Content-Type"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
			return
		}
		body, status, err := readBody(w, r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		decode, format := sig.proto, "protobuf"
		if asJSON {
			decode, format = sig.json, "JSON"
		}
		data, err := decode(body)
		if err != nil {
			http.Error(w, fmt.Sprintf("decoding the %s request as OTLP %s: %v", sig.name, format, err), http.StatusBadRequest)
			return
		}
		n := sig.items(data)
		// The line is saved before the counts move, so that whoever WaitFor wakes finds it
		// in the file.
		if s.opts.JSONLines != nil {
			line, err := sig.jsonLine(data)
			s.writeLine(sig.name, line, err)
		}
		s.mu.Lock()
		sig.keep(data, n)
		s.counts.Requests++
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if s.opts.OnReceive != nil {
			s.opts.OnReceive(sig.name, n)
		}
		// An empty Export*ServiceResponse is a full success, in either encoding.
		if asJSON {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
}

// isJSON tells OTLP JSON from OTLP protobuf by the Content-Type, parameters aside.
func isJSON(contentType string) (bool, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	switch {
	case err == nil && mt == "application/x-protobuf":
		return false, nil
	case err == nil && mt == "application/json":
		return true, nil
	}
	return false, fmt.Errorf("unsupported Content-Type %q: OTLP/HTTP is application/x-protobuf or application/json", contentType)
}

// readBody reads a request body, decompressed, within maxBody; a failure comes with the
// status to answer.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q: the sink takes gzip or none", enc)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body exceeds %d bytes", maxBody)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	if enc != "gzip" {
		return body, http.StatusOK, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("decompressing the gzip request body: %w", err)
	}
	body, err = io.ReadAll(io.LimitReader(zr, maxBody+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("decompressing the gzip request body: %w", err)
	}
	if len(body) > maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the decompressed request body exceeds %d bytes", maxBody)
	}
	return body, http.StatusOK, nil
}

// writeLine appends one request to JSONLines. A failure does not fail the request, whose
// data the sink keeps all the same; Close reports it.
func (s *Sink) writeLine(signal string, line []byte, err error) {
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	if s.linesDone {
		return
	}
	if err == nil {
		_, err = s.opts.JSONLines.Write(append(line, '\n'))
	}
	if err != nil && s.lineErr == nil {
		s.lineErr = fmt.Errorf("saving %s as a JSON line: %w", signal, err)
	}
}
