package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// subscribe starts the listener, then subscribes it (the platform may deliver as soon as the
// subscription is accepted). It reports whether platform events will be delivered, which is
// what makes waiting for reports at SHUTDOWN meaningful.
func subscribe(hc *http.Client, base string, idHeader map[string]string, rec *recorder, rep *reports) bool {
	var apiPath, schema string
	switch api := env("RECORDER_API", "telemetry"); api {
	case "none":
		return false
	case "telemetry":
		apiPath, schema = "/2022-07-01/telemetry", "2022-12-13"
	case "logs":
		apiPath, schema = "/2020-08-15/logs", "2021-03-18"
	default:
		fatalf("RECORDER_API=%q: want telemetry, logs or none", api)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("starting listener: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var dest destination
	switch proto := env("RECORDER_PROTOCOL", "HTTP"); proto {
	case "HTTP":
		// An explicitly empty RECORDER_PATH subscribes the bare root, which the spec allows.
		path, ok := os.LookupEnv("RECORDER_PATH")
		if !ok {
			path = "telemetry"
		}
		dest = destination{Protocol: "HTTP", URI: fmt.Sprintf("http://sandbox.localdomain:%d/%s", port, path)}
		l := &httpListener{
			rec:       rec,
			reports:   rep,
			delay:     time.Duration(envInt("RECORDER_DELAY_MS", 0)) * time.Millisecond,
			failFirst: int64(envInt("RECORDER_FAIL_FIRST", 0)),
		}
		go func() { fatalf("listener stopped: %v", http.Serve(ln, l)) }()
	case "TCP":
		dest = destination{Protocol: "TCP", URI: fmt.Sprintf("sandbox.localdomain:%d", port)}
		go acceptLines(ln, rec, rep)
	default:
		fatalf("RECORDER_PROTOCOL=%q: want HTTP or TCP", proto)
	}
	types := list(env("RECORDER_TYPES", "platform,function,extension"))
	req := subscribeRequest{
		SchemaVersion: env("RECORDER_SCHEMA", schema),
		Types:         types,
		Buffering:     buffering{MaxItems: 1000, MaxBytes: 262144, TimeoutMs: envInt("RECORDER_TIMEOUT_MS", 25)},
		Destination:   dest,
	}
	resp, body, err := call(hc, http.MethodPut, base+apiPath, idHeader, req)
	if err != nil {
		fatalf("subscribe: %v", err)
	}
	rec.write(record{Kind: "subscribe", Status: resp.StatusCode, Body: rawJSON(body)})
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fatalf("subscribe: HTTP %d: %s", resp.StatusCode, body)
	}
	fmt.Fprintln(os.Stderr, "recorder: subscribed")
	return slices.Contains(types, "platform")
}

// httpListener records HTTP deliveries. It never prints: with the extension stream
// subscribed, every printed line would come back as another delivery.
type httpListener struct {
	rec     *recorder
	reports *reports
	// delay makes a slow consumer, failFirst a failing one, for the platform's retry tests.
	delay     time.Duration
	failFirst int64
	served    atomic.Int64
}

func (l *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := nowMs()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	if l.served.Add(1) <= l.failFirst {
		status = http.StatusInternalServerError
	}
	l.rec.write(record{Kind: "delivery", Method: r.Method, Path: r.URL.Path, Status: status, Body: rawJSON(body), AtMs: at})
	if l.delay > 0 {
		select {
		case <-time.After(l.delay):
		case <-r.Context().Done():
			// The platform gave up on this delivery and will send it again.
			return
		}
	}
	// Only an acknowledged report counts: a refused batch is delivered again.
	if status == http.StatusOK {
		var batch []envelope
		if json.Unmarshal(body, &batch) == nil {
			for _, e := range batch {
				l.reports.add(e)
			}
		}
	}
	w.WriteHeader(status)
}

// acceptLines serves the TCP destination: each connection carries NDJSON, one event a line.
func acceptLines(ln net.Listener, rec *recorder, rep *reports) {
	for {
		c, err := ln.Accept()
		if err != nil {
			fatalf("accepting a TCP delivery: %v", err)
		}
		go readLines(c, rec, rep)
	}
}

func readLines(c net.Conn, rec *recorder, rep *reports) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			rec.write(record{Kind: "line", Body: rawJSON(line), AtMs: nowMs()})
			var e envelope
			if json.Unmarshal(line, &e) == nil {
				rep.add(e)
			}
		}
		if err != nil {
			return
		}
	}
}

// envelope is a delivered event. Record stays raw because its shape depends on Type: a
// function line may be a string, a Logs API platform.fault is one.
type envelope struct {
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// reports tracks the invocations whose platform.report has not arrived. The report of an
// invocation is emitted only after every extension has asked for its next event, so the last
// one usually arrives while the recorder is already handling SHUTDOWN, and never before the
// recorder has seen the INVOKE.
type reports struct {
	mu      sync.Mutex
	pending map[string]bool
	// changed is closed and replaced on every report, waking the SHUTDOWN wait.
	changed chan struct{}
}

func (r *reports) invoked(requestID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[requestID] = true
}

// add notes e when it is a report; anything else is ignored.
func (r *reports) add(e envelope) {
	if e.Type != "platform.report" {
		return
	}
	var rec struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(e.Record, &rec) != nil || rec.RequestID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, rec.RequestID)
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait blocks until no report is pending or deadline passes, and returns how many are still
// pending.
func (r *reports) wait(deadline time.Time) int {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		r.mu.Lock()
		n, changed := len(r.pending), r.changed
		r.mu.Unlock()
		if n == 0 {
			return 0
		}
		select {
		case <-changed:
		case <-timer.C:
			return n
		}
	}
}

// blockUntilKilled plays an extension that never finishes its shutdown work. It ignores
// SIGTERM too, so only the platform's SIGKILL ends it, and waiting on a signal channel keeps
// the runtime from declaring a deadlock when no listener goroutine exists.
func blockUntilKilled() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	for range sig {
	}
}
