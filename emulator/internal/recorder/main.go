// Command recorder is an external Lambda extension for the emulator's tests. It behaves like a
// telemetry extension (register, listen, subscribe, follow the event loop, wait for the last
// reports at SHUTDOWN) and writes everything it sees to an NDJSON file, so tests can assert
// on the exact traffic the emulator produced. Its misbehaviours (slow or failing listener,
// crash, ignored SHUTDOWN, init error) are switched on by RECORDER_* environment variables.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shutdownMargin is kept free before the SHUTDOWN deadline so the recorder exits on its own
// instead of being killed while writing its last record.
const shutdownMargin = 200 * time.Millisecond

// registerRequest is the Register body.
type registerRequest struct {
	Events []string `json:"events"`
}

// errorRequest is the body of the init/error call.
type errorRequest struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

// subscribeRequest is the body of a Telemetry or Logs API subscription.
type subscribeRequest struct {
	SchemaVersion string      `json:"schemaVersion"`
	Types         []string    `json:"types"`
	Buffering     buffering   `json:"buffering"`
	Destination   destination `json:"destination"`
}

type buffering struct {
	MaxItems  int `json:"maxItems"`
	MaxBytes  int `json:"maxBytes"`
	TimeoutMs int `json:"timeoutMs"`
}

type destination struct {
	Protocol string `json:"protocol"`
	URI      string `json:"URI"`
}

// event is the part of an INVOKE or SHUTDOWN event the recorder acts on; the record keeps
// the body as received.
type event struct {
	EventType      string `json:"eventType"`
	RequestID      string `json:"requestId"`
	DeadlineMs     int64  `json:"deadlineMs"`
	ShutdownReason string `json:"shutdownReason"`
}

// record is one line of the output file; Kind says which other fields are set.
type record struct {
	Kind    string            `json:"kind"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	ID      string            `json:"id,omitempty"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
	AtMs    int64             `json:"atMs,omitempty"`
}

// recorder writes records. Each goes out in a single unbuffered write, so a test reading the
// file sees what happened up to the moment the process was killed.
type recorder struct {
	mu  sync.Mutex
	out *os.File
}

func (r *recorder) write(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(rec)
}

func (r *recorder) writeLocked(rec record) {
	b, err := json.Marshal(rec)
	if err != nil {
		fatalf("encoding %s record: %v", rec.Kind, err)
	}
	if _, err := r.out.Write(append(b, '\n')); err != nil {
		fatalf("writing %s record: %v", rec.Kind, err)
	}
}

// exit records a clean exit, the tests' proof that the recorder was not killed. It keeps the
// lock, so no delivery can be recorded after the exit line.
func (r *recorder) exit() {
	r.mu.Lock()
	r.writeLocked(record{Kind: "exit"})
	os.Exit(0)
}

// rawJSON keeps a body verbatim when it is JSON, and as a JSON string otherwise, so a peer's
// malformed answer is recorded rather than breaking the output line.
func rawJSON(b []byte) json.RawMessage {
	if b = bytes.TrimSpace(b); len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

func nowMs() int64 { return time.Now().UnixMilli() }

// fatalf is the answer to every unrecoverable error: a line on stderr, which the platform
// attributes to the extension, and exit status 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "recorder: "+format+"\n", args...)
	os.Exit(1)
}

// env returns the variable's value, or def when it is unset or empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt is env for numbers; a malformed value stops the recorder, since a test relying on
// it would otherwise pass or fail for the wrong reason.
func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fatalf("parsing %s: %v", name, err)
	}
	return n
}

// list splits a comma list. "none" is the empty list, which must go on the wire as [] for
// the platform to see an explicit empty value.
func list(s string) []string {
	if s == "none" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// call makes one Lambda API request and returns the whole answer whatever its status, so the
// caller can record it before judging it.
func call(hc *http.Client, method, url string, header map[string]string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("building request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading answer: %w", err)
	}
	return resp, b, nil
}

func main() {
	// RECORDER_OUT_DIR gives each of several recorders its own file, named after it.
	outPath := os.Getenv("RECORDER_OUT")
	if dir := os.Getenv("RECORDER_OUT_DIR"); dir != "" {
		outPath = filepath.Join(dir, filepath.Base(os.Args[0])+".jsonl")
	}
	if outPath == "" {
		fatalf("RECORDER_OUT or RECORDER_OUT_DIR must be set")
	}
	// Appending: after a reset the next environment's recorder continues the same file.
	f, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fatalf("creating output: %v", err)
	}
	rec := &recorder{out: f}
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API")
	// The event loop's GET blocks for as long as the environment stays idle, so no timeout.
	hc := &http.Client{}

	id := register(hc, base, rec)
	idHeader := map[string]string{"Lambda-Extension-Identifier": id}
	if errType := os.Getenv("RECORDER_INIT_ERROR"); errType != "" {
		resp, body, err := call(hc, http.MethodPost, base+"/2020-01-01/extension/init/error",
			map[string]string{"Lambda-Extension-Identifier": id, "Lambda-Extension-Function-Error-Type": errType},
			errorRequest{ErrorMessage: "init error requested by RECORDER_INIT_ERROR", ErrorType: errType, StackTrace: []string{}})
		if err != nil {
			fatalf("reporting init error: %v", err)
		}
		rec.write(record{Kind: "initError", Status: resp.StatusCode, Body: rawJSON(body)})
		rec.exit()
	}
	invokeWork := time.Duration(envInt("RECORDER_INVOKE_MS", 0)) * time.Millisecond
	crashOnInvoke := os.Getenv("RECORDER_CRASH_ON_INVOKE") == "1"
	ignoreShutdown := os.Getenv("RECORDER_IGNORE_SHUTDOWN") == "1"
	reports := &reports{pending: map[string]bool{}, changed: make(chan struct{})}
	waitReports := subscribe(hc, base, idHeader, rec, reports)

	for {
		resp, body, err := call(hc, http.MethodGet, base+"/2020-01-01/extension/event/next", idHeader, nil)
		if err != nil {
			fatalf("next event: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			fatalf("next event: HTTP %d: %s", resp.StatusCode, body)
		}
		rec.write(record{Kind: "event", ID: resp.Header.Get("Lambda-Extension-Event-Identifier"), Body: rawJSON(body), AtMs: nowMs()})
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			fatalf("decoding event %q: %v", body, err)
		}
		switch strings.ToUpper(ev.EventType) {
		case "INVOKE":
			reports.invoked(ev.RequestID)
			time.Sleep(invokeWork)
			if crashOnInvoke {
				fmt.Fprintln(os.Stderr, "recorder: crashing on invoke")
				os.Exit(3)
			}
		case "SHUTDOWN":
			fmt.Fprintf(os.Stderr, "recorder: shutdown %s\n", ev.ShutdownReason)
			if ignoreShutdown {
				blockUntilKilled()
			}
			if waitReports {
				deadline := time.UnixMilli(ev.DeadlineMs).Add(-shutdownMargin)
				if pending := reports.wait(deadline); pending > 0 {
					fmt.Fprintf(os.Stderr, "recorder: %d reports missing at the deadline\n", pending)
				}
			}
			rec.exit()
		}
	}
}

// register records the answer whatever it is, so tests of refused registrations can see it,
// and returns the extension identifier.
func register(hc *http.Client, base string, rec *recorder) string {
	name := filepath.Base(os.Args[0])
	resp, body, err := call(hc, http.MethodPost, base+"/2020-01-01/extension/register",
		map[string]string{"Lambda-Extension-Name": name, "Lambda-Extension-Accept-Feature": "accountId"},
		registerRequest{Events: list(env("RECORDER_EVENTS", "INVOKE,SHUTDOWN"))})
	if err != nil {
		fatalf("register: %v", err)
	}
	headers := make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		headers[k] = strings.Join(v, ", ")
	}
	rec.write(record{Kind: "register", Status: resp.StatusCode, Headers: headers, Body: rawJSON(body)})
	id := resp.Header.Get("Lambda-Extension-Identifier")
	if resp.StatusCode != http.StatusOK || id == "" {
		fatalf("register: HTTP %d, identifier %q: %s", resp.StatusCode, id, body)
	}
	fmt.Fprintf(os.Stderr, "recorder: registered as %s\n", name)
	return id
}
