package sink

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// TestExporterDelivers sends a run with the project's exporter in each OTLP/HTTP encoding,
// with and without gzip, and checks that the sink keeps exactly what was sent.
func TestExporterDelivers(t *testing.T) {
	for _, tc := range []struct {
		protocol exporters.Protocol
		gzip     bool
	}{
		{exporters.HTTPProtobuf, false},
		{exporters.HTTPProtobuf, true},
		{exporters.HTTPJSON, false},
		{exporters.HTTPJSON, true},
	} {
		t.Run(fmt.Sprintf("%s/gzip=%v", tc.protocol, tc.gzip), func(t *testing.T) {
			var mu sync.Mutex
			var notes []string
			s := start(t, Options{OnReceive: func(signal string, items int) {
				mu.Lock()
				defer mu.Unlock()
				notes = append(notes, fmt.Sprintf("%s:%d", signal, items))
			}})
			f := newFixture(t)
			send(t, exporter(t, s, tc.protocol, tc.gzip), f.requests())

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			want := Counts{Requests: 5, Spans: 4, LogRecords: 8, DataPoints: 9}
			if err := s.WaitFor(ctx, func(c Counts) bool { return c.Requests == want.Requests }); err != nil {
				t.Fatal(err)
			}
			if got := s.Counts(); got != want {
				t.Errorf("counts %+v, want %+v", got, want)
			}
			mu.Lock()
			if got, want := strings.Join(notes, " "), "traces:3 traces:1 logs:8 metrics:4 metrics:5"; got != want {
				t.Errorf("OnReceive notes %q, want %q", got, want)
			}
			mu.Unlock()

			gotT, gotL, gotM := s.Received()
			wantT, wantL, wantM := f.merged()
			sameJSON(t, "traces", new(ptrace.JSONMarshaler).MarshalTraces, gotT, wantT)
			sameJSON(t, "logs", new(plog.JSONMarshaler).MarshalLogs, gotL, wantL)
			sameJSON(t, "metrics", new(pmetric.JSONMarshaler).MarshalMetrics, gotM, wantM)
		})
	}
}

func sameJSON[T any](t *testing.T, what string, marshal func(T) ([]byte, error), got, want T) {
	t.Helper()
	g, err := marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("received %s differ:\n got  %s\n want %s", what, g, w)
	}
}

// TestHTTP checks the answers to requests the exporter never makes: wrong paths, methods,
// types and encodings, bodies too large or undecodable, and the exact success answers.
func TestHTTP(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	const protobuf, json = "application/x-protobuf", "application/json"
	tests := []struct {
		name, method, path, contentType, encoding string
		body                                      []byte
		status                                    int
		allow, respType                           string
		// respBody is the whole answer for a success, and a part of it otherwise.
		respBody string
	}{
		{name: "unknown path", path: "/v1/profiles", contentType: protobuf, status: http.StatusNotFound},
		{name: "root", path: "/", contentType: protobuf, status: http.StatusNotFound},
		{name: "GET", method: http.MethodGet, path: "/v1/traces", status: http.StatusMethodNotAllowed, allow: "POST"},
		{name: "PUT", method: http.MethodPut, path: "/v1/logs", contentType: json, body: []byte("{}"), status: http.StatusMethodNotAllowed, allow: "POST"},
		{name: "text", path: "/v1/metrics", contentType: "text/plain", body: []byte("{}"), status: http.StatusUnsupportedMediaType, respBody: `unsupported Content-Type "text/plain"`},
		{name: "no type", path: "/v1/metrics", body: []byte("{}"), status: http.StatusUnsupportedMediaType, respBody: "unsupported Content-Type"},
		{name: "brotli", path: "/v1/traces", contentType: protobuf, encoding: "br", status: http.StatusUnsupportedMediaType, respBody: `unsupported Content-Encoding "br"`},
		{name: "bad protobuf", path: "/v1/traces", contentType: protobuf, body: []byte{0xff, 0xff, 0xff}, status: http.StatusBadRequest, respBody: "decoding the traces request as OTLP protobuf"},
		{name: "bad JSON", path: "/v1/logs", contentType: json, body: []byte(`{"resourceLogs":`), status: http.StatusBadRequest, respBody: "decoding the logs request as OTLP JSON"},
		{name: "not gzip", path: "/v1/metrics", contentType: json, encoding: "gzip", body: []byte("{}"), status: http.StatusBadRequest, respBody: "decompressing the gzip request body"},
		{name: "too large", path: "/v1/traces", contentType: protobuf, body: make([]byte, maxBody+1), status: http.StatusRequestEntityTooLarge, respBody: "exceeds"},
		{name: "too large unzipped", path: "/v1/traces", contentType: protobuf, encoding: "gzip", body: gz(make([]byte, maxBody+1)), status: http.StatusRequestEntityTooLarge, respBody: "decompressed request body exceeds"},
		{name: "protobuf", path: "/v1/traces", contentType: protobuf, status: http.StatusOK, respType: protobuf},
		{name: "JSON", path: "/v1/logs", contentType: "application/json; charset=utf-8", body: []byte("{}"), status: http.StatusOK, respType: json, respBody: "{}"},
		{name: "gzip JSON", path: "/v1/metrics", contentType: json, encoding: "GZIP", body: gz([]byte(`{"resourceMetrics":[]}`)), status: http.StatusOK, respType: json, respBody: "{}"},
	}
	s := start(t, Options{})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	accepted := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), cmp.Or(tc.method, http.MethodPost), s.Endpoint()+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.status != http.StatusOK {
				if !strings.Contains(string(body), tc.respBody) {
					t.Errorf("answer %q does not say %q", body, tc.respBody)
				}
				return
			}
			accepted++
			if got := resp.Header.Get("Content-Type"); got != tc.respType {
				t.Errorf("Content-Type %q, want %q", got, tc.respType)
			}
			if string(body) != tc.respBody {
				t.Errorf("answer %q, want %q", body, tc.respBody)
			}
		})
	}
	if got, want := s.Counts(), (Counts{Requests: accepted}); got != want {
		t.Errorf("counts %+v, want %+v: refused requests must leave nothing", got, want)
	}
}

// TestJSONLines checks that each request becomes one line of OTLP JSON that reads back
// with what was sent, whatever encoding it came in.
func TestJSONLines(t *testing.T) {
	var out testbin.Buffer
	s := start(t, Options{JSONLines: &out})
	reqs := newFixture(t).requests()
	send(t, exporter(t, s, exporters.HTTPProtobuf, true), reqs[:3])
	send(t, exporter(t, s, exporters.HTTPJSON, false), reqs[3:])
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, func(c Counts) bool { return c.Requests == len(reqs) }); err != nil {
		t.Fatal(err)
	}

	text := out.String()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("output does not end a line: %q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(reqs) {
		t.Fatalf("%d lines for %d requests", len(lines), len(reqs))
	}
	for i, r := range reqs {
		line := []byte(lines[i])
		var items int
		var err error
		var key string
		switch r.Signal() {
		case exporters.Traces:
			var td ptrace.Traces
			td, err = new(ptrace.JSONUnmarshaler).UnmarshalTraces(line)
			items, key = td.SpanCount(), "resourceSpans"
		case exporters.Logs:
			var ld plog.Logs
			ld, err = new(plog.JSONUnmarshaler).UnmarshalLogs(line)
			items, key = ld.LogRecordCount(), "resourceLogs"
		case exporters.Metrics:
			var md pmetric.Metrics
			md, err = new(pmetric.JSONUnmarshaler).UnmarshalMetrics(line)
			items, key = md.DataPointCount(), "resourceMetrics"
		}
		if err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if items != r.Items() || !strings.HasPrefix(lines[i], `{"`+key+`":`) {
			t.Errorf("line %d has %d items, want %d %s in {%q:…}: %.80s", i+1, items, r.Items(), r.Signal(), key, line)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestJSONLinesFailure checks that a file that cannot be written does not fail the
// exporter, whose data the sink keeps, but does fail Close.
func TestJSONLinesFailure(t *testing.T) {
	s, err := Start(t.Context(), "127.0.0.1:0", Options{JSONLines: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, exporter(t, s, exporters.HTTPProtobuf, false), newFixture(t).requests()[:1])
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err = s.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "saving traces as a JSON line: disk full") {
		t.Errorf("Close: %v, want the write failure", err)
	}
	if got := s.Counts().Spans; got != 3 {
		t.Errorf("kept %d spans, want 3", got)
	}
}

// TestWaitFor checks that WaitFor wakes on a request and gives up with its context.
func TestWaitFor(t *testing.T) {
	s := start(t, Options{})
	woke := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		woke <- s.WaitFor(ctx, func(c Counts) bool { return c.Spans >= 3 })
	}()
	send(t, exporter(t, s, exporters.HTTPProtobuf, false), newFixture(t).requests()[:1])
	if err := <-woke; err != nil {
		t.Errorf("waiting for spans that came: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := s.WaitFor(ctx, func(c Counts) bool { return c.LogRecords > 0 })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for logs that never come: %v, want the deadline", err)
	}
}

// TestStartBusyAddress checks that an address in use is an error, not a sink elsewhere.
func TestStartBusyAddress(t *testing.T) {
	s := start(t, Options{})
	addr := strings.TrimPrefix(s.Endpoint(), "http://")
	if other, err := Start(t.Context(), addr, Options{}); err == nil {
		_ = other.Close(t.Context())
		t.Fatalf("a second sink started on %s", addr)
	}
}
