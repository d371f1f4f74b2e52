package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badInputMaxBody is the body limit of the listener the bad-input cases run against:
// small, so that the oversized cases stay small too.
const badInputMaxBody = 4096

// goodBatch is delivered first in every bad-input case: whatever follows, its two events
// must stay in the buffer.
const goodBatch = `[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"[INFO] accepted before"},` +
	`{"time":"2022-10-12T00:03:50.001Z","type":"platform.start","record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","version":"$LATEST"}}]`

// rawRequest is one HTTP request as written on the wire.
type rawRequest struct {
	method, path, contentType string
	body                      string
	// chunked sends the body in one chunk of unknown total length instead of with a
	// Content-Length.
	chunked bool
	// wire, when set, is sent as it is instead of a request built from the fields above.
	wire string
	// cut closes the connection after sending the wire bytes, without waiting for an answer.
	cut bool
}

func postBody(body string) rawRequest { return rawRequest{method: "POST", body: body} }

// bytes writes the request as an HTTP/1.1 client would.
func (r rawRequest) bytes(host string) []byte {
	if r.wire != "" {
		return []byte(r.wire)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, cmpOr(r.path, "/"), host)
	if ct := cmpOr(r.contentType, "application/json"); ct != "-" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
	}
	if r.chunked {
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(r.body), r.body)
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	}
	return b.Bytes()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// exchange sends one request on a connection of its own and returns the answer's status,
// or 0 when the listener closed the connection without one.
func exchange(t *testing.T, addr string, r rawRequest) int {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if _, err := c.Write(r.bytes(addr)); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	if r.cut {
		// Closing at once would race the listener's read of what was sent: wait for it to
		// see the end of the connection instead, which it answers with a close.
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return 0
	case err != nil:
		t.Fatalf("reading the answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// padTo pads a batch with white space inside its array to exactly n bytes.
func padTo(batch string, n int) string {
	return batch[:len(batch)-1] + strings.Repeat(" ", n-len(batch)) + "]"
}

// badInputCase is the record of one case in testdata/listener/bad-input.golden.
type badInputCase struct {
	Name     string         `json:"name"`
	Statuses []int          `json:"statuses"`
	Counts   map[string]any `json:"counts"`
	Buffered []string       `json:"buffered"`
}

// TestListenerBadInput sends each kind of bad input to a real listener over loopback, after
// one good batch, and compares what it answered, what it counted and what it kept with
// testdata/listener/bad-input.golden (go test -run TestListenerBadInput -update rewrites
// it). Beyond the golden file, for every case: every request is answered (a POST the
// listener could read always with 200), nothing panics, the counters account for every
// event buffered, and the good batch delivered first is still in the buffer.
func TestListenerBadInput(t *testing.T) {
	record := func(typ, rec string) string {
		return `{"time":"2022-10-12T00:03:51.000Z","type":"` + typ + `","record":` + rec + `}`
	}
	fn := func(text string) string { return record("function", `"`+text+`"`) }
	bigLine := strings.Repeat("x", badInputMaxBody)
	var many []string
	for i := 0; len(strings.Join(many, ",")) < badInputMaxBody; i++ {
		many = append(many, fn(fmt.Sprintf("line %d", i)))
	}

	tests := []struct {
		name string
		reqs []rawRequest
	}{
		{"nothing bad: the good batch alone", nil},
		// Malformed batches: answered 200 (the platform would only retry them), counted
		// as malformed_batch, with the events read before a syntax error kept.
		{"not JSON", []rawRequest{postBody("hello")}},
		{"empty body", []rawRequest{postBody("")}},
		{"white space only", []rawRequest{postBody(" \r\n\t ")}},
		{"NUL bytes", []rawRequest{postBody("\x00\x00\x00")}},
		{"truncated inside the second event", []rawRequest{postBody("[" + fn("kept") + `,{"time":"2022-10-12T00:03:51.000Z","type":"function","record":"lo`)}},
		{"truncated after an event", []rawRequest{postBody("[" + fn("kept") + ",")}},
		{"not an array: one event object", []rawRequest{postBody(fn("alone"))}},
		{"not an array: a string", []rawRequest{postBody(`"[]"`)}},
		{"garbage after the array", []rawRequest{postBody("[" + fn("kept") + "] and more")}},
		{"two arrays", []rawRequest{postBody("[" + fn("kept") + "][" + fn("second") + "]")}},
		// Well-formed JSON of the wrong shape: every element is kept, as *Raw when it
		// cannot be typed, and counted as untyped; nothing is dropped.
		{"an array of non-objects", []rawRequest{postBody(`[1,"two",null,true,[],{}]`)}},
		{"a platform record that is a number", []rawRequest{postBody("[" + record("platform.start", "42") + "]")}},
		{"a platform record that is an array", []rawRequest{postBody("[" + record("platform.report", `[{"requestId":"r"}]`) + "]")}},
		{"a platform record with a field of the wrong type", []rawRequest{postBody("[" + record("platform.report", `{"requestId":7,"metrics":{"durationMs":"fast"}}`) + "]")}},
		{"time that is not a string", []rawRequest{postBody(`[{"time":1665532980,"type":"function","record":"t"}]`)}},
		{"time that is not a time", []rawRequest{postBody(`[{"time":"yesterday","type":"function","record":"t"}]`)}},
		{"type that is not a string", []rawRequest{postBody(`[{"time":"2022-10-12T00:03:51.000Z","type":["function"],"record":"t"}]`)}},
		{"a function record that is a number", []rawRequest{postBody("[" + record("function", "3.5e2") + "]")}},
		{"unknown event types", []rawRequest{postBody("[" + record("platform.future", `{"a":1}`) + "," + record("", `"x"`) + "]")}},
		{"no type at all", []rawRequest{postBody(`[{"time":"2022-10-12T00:03:51.000Z","record":"x"}]`)}},
		// Invalid UTF-8 is not a JSON syntax error: the text keeps its valid parts, with
		// U+FFFD for the bytes that are not.
		{"invalid UTF-8 in a function line", []rawRequest{postBody("[" + fn("ok \xff\xfe then \xc3\x28") + "]")}},
		{"invalid UTF-8 in a JSON log line", []rawRequest{postBody("[" + record("function", "{\"level\":\"WARN\xff\",\"message\":\"m\xc3\"}") + "]")}},
		{"invalid UTF-8 in the type", []rawRequest{postBody("[" + record("platform.st\xffart", `{"requestId":"r"}`) + "]")}},
		// Size limits: a body over the limit is refused with 413 before it is read.
		{"one record larger than the body limit", []rawRequest{postBody("[" + fn(bigLine) + "]")}},
		{"many records over the body limit", []rawRequest{postBody("[" + strings.Join(many, ",") + "]")}},
		{"a chunked body over the limit", []rawRequest{{method: "POST", body: "[" + fn(bigLine) + "]", chunked: true}}},
		{"a body exactly at the limit", []rawRequest{postBody(padTo("["+fn("at the limit")+"]", badInputMaxBody))}},
		// The same batch twice: the listener cannot tell a redelivery from new events, so
		// both are kept and counted (see Listener).
		{"the good batch delivered again", []rawRequest{postBody(goodBatch)}},
		// Requests that are not deliveries.
		{"GET", []rawRequest{{method: "GET"}}},
		{"PUT with a good batch", []rawRequest{{method: "PUT", body: goodBatch}}},
		{"DELETE", []rawRequest{{method: "DELETE"}}},
		{"another path", []rawRequest{{method: "POST", path: "/some/path?x=1", body: "[" + fn("path") + "]"}}},
		{"Content-Type text/plain", []rawRequest{{method: "POST", contentType: "text/plain", body: "[" + fn("plain") + "]"}}},
		{"no Content-Type", []rawRequest{{method: "POST", contentType: "-", body: "[" + fn("untyped") + "]"}}},
		{"not HTTP", []rawRequest{{wire: "HELLO\r\n\r\n"}}},
		{"a header larger than the read buffer", []rawRequest{{wire: "POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8192) + "\r\nContent-Length: 2\r\n\r\n[]"}}},
		{"a bad Content-Length", []rawRequest{{wire: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n[]"}}},
		{"the connection closed mid-body", []rawRequest{{wire: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[" + fn("cut"), cut: true}}},
		{"the connection closed mid-header", []rawRequest{{wire: "POST / HTTP/1.1\r\nHost: x\r\nContent-Len", cut: true}}},
	}

	var got []badInputCase
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf, st := startListener(t, badInputMaxBody, 1<<20)
			addr := hostOf(t, l)
			reqs := append([]rawRequest{postBody(goodBatch)}, tt.reqs...)
			c := badInputCase{Name: tt.name, Buffered: []string{}}
			for i, r := range reqs {
				status := exchange(t, addr, r)
				c.Statuses = append(c.Statuses, status)
				if status == 0 && !r.cut {
					t.Errorf("request %d was not answered", i)
				}
				if r.method == "POST" && len(r.body) <= badInputMaxBody && status != http.StatusOK {
					t.Errorf("request %d, a POST the listener can read, was answered %d, want 200", i, status)
				}
			}
			// A cut connection is counted when the listener has seen its end, after the
			// client's close: wait for the connection to be gone.
			waitFor(t, "every connection to end", func() bool { return l.tracked() == 0 })
			events := buf.Drain(nil)
			counts := st.Snapshot()
			for _, e := range events {
				c.Buffered = append(c.Buffered, describe(e))
			}
			c.Counts = countsMap(counts)
			got = append(got, c)

			if counts.Dropped[DropListenerPanic] != 0 || counts.Dropped[DropBufferFull] != 0 {
				t.Errorf("counts %+v: a panic or a full buffer", counts)
			}
			if counts.Events != uint64(len(events)) {
				t.Errorf("counted %d events, buffered %d", counts.Events, len(events))
			}
			if len(events) < 2 || describe(events[0]) != "function *telemetry.Log [INFO] accepted before" || events[1].Type != TypeStart {
				t.Errorf("the good batch delivered first was lost: %q", c.Buffered)
			}
		})
	}
	if t.Failed() {
		return
	}
	compareGolden(t, filepath.Join("testdata", "listener", "bad-input.golden"), got)
}

// hostOf returns the listener's host:port.
func hostOf(t *testing.T, l *Listener) string {
	t.Helper()
	u, err := url.Parse(l.URI())
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// tracked returns the number of connections the listener is serving.
func (l *Listener) tracked() int { return l.server.Conns() }

// describe sums an event up for the golden file: its type, its record's Go type, and the
// text of a log line or the reason a record is untyped.
func describe(e Event) string {
	s := fmt.Sprintf("%s %T", e.Type, e.Record)
	switch r := e.Record.(type) {
	case *Log:
		switch {
		case r.Object != nil:
			s += fmt.Sprintf(" level=%q message=%q", r.Level, r.Message)
		default:
			s += " " + r.Text
		}
	case *Raw:
		if r.Err != "" {
			s += ": " + r.Err
		}
	}
	if e.Time.IsZero() {
		s += " (no time)"
	}
	return s
}

// countsMap lists the counters that are not zero, by the names the debug summary uses.
func countsMap(c Counts) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]uint64{"batches": c.Batches, "events": c.Events, "bytes": c.Bytes,
		"untyped": c.Untyped, "rejected": c.Rejected, "accept_errors": c.AcceptErrors} {
		if v != 0 {
			m[k] = v
		}
	}
	for _, r := range DropReasons() {
		if c.Dropped[r] != 0 || c.DroppedBytes[r] != 0 {
			m["dropped_"+r.String()] = map[string]uint64{"count": c.Dropped[r], "bytes": c.DroppedBytes[r]}
		}
	}
	return m
}

// compareGolden compares v, as indented JSON, with the golden file at path, or rewrites
// the file with -update.
func compareGolden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./telemetry -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the outcome differs from %s (go test ./telemetry -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}
