package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// runTimeout bounds one emulator run, whatever goes wrong.
const runTimeout = 60 * time.Second

// backend is the receiver and the fault-injecting front the extension exports to.
type backend struct {
	rcv   *otlptest.Receiver
	front *otlptest.Front
	// env points the extension at the front.
	env []string
}

// newBackend starts a receiver with a front before it, for OTLP/HTTP protobuf or, with
// grpc, OTLP/gRPC.
func newBackend(t *testing.T, grpc bool) *backend {
	t.Helper()
	rcv := otlptest.Start(t)
	if grpc {
		front := otlptest.StartFront(t, "http://"+rcv.GRPCEndpoint)
		return &backend{rcv: rcv, front: front, env: []string{
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_ENDPOINT=" + front.URL,
		}}
	}
	front := otlptest.StartFront(t, rcv.HTTPEndpoint)
	return &backend{rcv: rcv, front: front, env: []string{
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=" + front.URL,
	}}
}

// runConfig is one emulator run.
type runConfig struct {
	// events are the invocations' payloads, taken in turn; n is the number of invocations.
	events []string
	n      int
	// env is added to the function's environment, which the extension shares.
	env []string
	// flags are further emulator flags (--timeout, --memory-mb, --freeze, …).
	flags []string
	// before and after, when either is set, run the invocations one at a time through the
	// emulator's invoke endpoint and are called before each and once its response is in,
	// with its index from 0, so that a test can change the backend or stall the extension
	// between invocations.
	before func(i int, h *runHandle)
	after  func(i int, h *runHandle, requestID string)
	// failed says the environment is expected to fail (a reset after a timeout, a crash or
	// running out of memory), which makes the emulator exit with status 1.
	failed bool
	// function is the function's bootstrap; empty is hello's.
	function string
}

// run is what an emulator run left.
type run struct {
	stdout, stderr string
	stream         *stream
	// maxRSSKiB is the extension's peak resident memory, 0 when unknown.
	maxRSSKiB int64
}

// runEmulator runs the emulator with the extension and the function, the extension at its
// debug level so that its shutdown line gives its own counts.
func runEmulator(t *testing.T, b *backend, rc runConfig) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	dir := t.TempDir()
	eventsOut, rssOut := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "maxrss")
	function := cmp.Or(rc.function, bins.function)
	args := []string{
		"--extensions-dir", bins.extensions, "--task-dir", filepath.Dir(function),
		// Not the default name "function": in server mode the emulator then registers its
		// invoke path twice and panics (emulator/frontdoor.go).
		"--function-name", filepath.Base(filepath.Dir(function)), "--no-otlp-sink", "--events-out", eventsOut, "--invocations", strconv.Itoa(rc.n),
	}
	// Port 0: runs in parallel must not share the listener's default port; nor the local
	// receiver's, which is off unless the run turns it on.
	env := append([]string{"LAMBDA_OTEL_LOG_LEVEL=debug", "LAMBDA_OTEL_LISTENER_PORT=0", "E2E_MAXRSS_FILE=" + rssOut}, b.env...)
	if !slices.ContainsFunc(rc.env, func(kv string) bool { return strings.HasPrefix(kv, "LAMBDA_OTEL_RECEIVER=") }) {
		env = append(env, "LAMBDA_OTEL_RECEIVER=none")
	}
	for _, kv := range append(env, rc.env...) {
		args = append(args, "--env", kv)
	}
	args = append(args, rc.flags...)
	serve := rc.before != nil || rc.after != nil
	if !serve {
		for _, ev := range rc.events {
			args = append(args, "--invoke", ev)
		}
	} else {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	cmd := exec.CommandContext(ctx, bins.emulator, args...)
	// On the deadline the emulator is asked to stop, which ends its processes too.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout testbin.Buffer
	stderr := newWatcher(regexp.MustCompile(`http://127\.0\.0\.1:\d+/\S+`))
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting lambda-emulator: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if serve {
		invokeEach(t, ctx, stderr, exited, rc, &runHandle{ctx: ctx, stderr: stderr, marker: "E2E_MAXRSS_FILE=" + rssOut})
	}
	err := <-exited
	r := &run{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("lambda-emulator did not finish within %v\n%s", runTimeout, r.stderr)
	case err == nil && rc.failed:
		t.Errorf("lambda-emulator succeeded; want the environment to fail")
	case errors.As(err, &ee) && ee.ExitCode() == 1 && rc.failed:
	case err != nil:
		t.Fatalf("lambda-emulator: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "at the SHUTDOWN deadline and was killed") || strings.Contains(r.stdout, "killed at the deadline") {
		t.Errorf("the extension was killed at the SHUTDOWN deadline:\n%s", r.stdout)
	}
	r.stream = readStream(t, eventsOut)
	if !serve {
		checkSummary(t, r.stream, parseSummary(t, r.stdout))
	}
	if b, err := os.ReadFile(rssOut); err == nil {
		r.maxRSSKiB, _ = strconv.ParseInt(string(b), 10, 64)
	}
	return r
}

// invokeEach posts the invocations one at a time to the emulator's invoke endpoint, which
// it prints on stderr.
func invokeEach(t *testing.T, ctx context.Context, stderr *watcher, exited chan error, rc runConfig, h *runHandle) {
	t.Helper()
	var url string
	select {
	case url = <-stderr.found:
	case err := <-exited:
		exited <- err
		t.Fatalf("the emulator exited (%v) before it printed its invoke endpoint:\n%s", err, stderr.String())
	case <-ctx.Done():
		t.Fatalf("the emulator never printed its invoke endpoint:\n%s", stderr.String())
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for i := range rc.n {
		if rc.before != nil {
			rc.before(i, h)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(rc.events[i%len(rc.events)]))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("invocation %d: %v\n%s", i+1, err, stderr.String())
		}
		var answer struct {
			RequestID string `json:"requestId"`
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("invocation %d: %d %v", i+1, resp.StatusCode, err)
		}
		_ = json.Unmarshal(body, &answer)
		if rc.after != nil {
			rc.after(i, h, answer.RequestID)
		}
	}
}

// runHandle lets the hooks of a run act on it: signal its extension, found among those of
// the tests running in parallel by the marker in its environment, and wait for what the
// emulator writes.
type runHandle struct {
	ctx    context.Context
	stderr *watcher
	marker string
}

// awaitReport waits until the invocation's phase is over: the emulator writes its REPORT
// line once every extension has asked for the next event.
func (x *runHandle) awaitReport(t *testing.T, requestID string) {
	t.Helper()
	if !x.stderr.waitFor(x.ctx, "REPORT RequestId: "+requestID) {
		t.Fatalf("no REPORT for %s", requestID)
	}
}

// signal sends sig to the run's extension.
func (x *runHandle) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("finding the extension: %v", err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err != nil || exe != bins.extension {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), x.marker) {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("signalling the extension: %v", err)
		}
		return
	}
	t.Fatalf("the extension of this run is not running")
}

// watcher keeps what is written to it and sends the first match of its pattern.
type watcher struct {
	testbin.Buffer
	re    *regexp.Regexp
	found chan string
	// changed is signalled after each write.
	changed chan struct{}

	mu   sync.Mutex
	line []byte
	sent bool
}

func newWatcher(re *regexp.Regexp) *watcher {
	return &watcher{re: re, found: make(chan string, 1), changed: make(chan struct{}, 1)}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.sent {
		w.line = append(w.line, p...)
		if m := w.re.Find(w.line); m != nil {
			w.sent = true
			w.found <- string(m)
			w.line = nil
		} else if i := bytes.LastIndexByte(w.line, '\n'); i >= 0 {
			w.line = w.line[i+1:]
		}
	}
	w.mu.Unlock()
	n, err := w.Buffer.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until s has been written or ctx ends, reporting whether it was.
func (w *watcher) waitFor(ctx context.Context, s string) bool {
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.changed:
		case <-ctx.Done():
			return strings.Contains(w.String(), s)
		}
	}
	return true
}

// summaryRow is one invocation of the emulator's printed summary.
type summaryRow struct {
	requestID string
	overhead  time.Duration
}

// parseSummary reads the emulator's table: "#  request id  status  init  duration  runtime
// extensions after response  billed  max memory", columns two or more spaces apart.
func parseSummary(t *testing.T, stdout string) []summaryRow {
	t.Helper()
	var rows []summaryRow
	cols := regexp.MustCompile(`\s{2,}`)
	for line := range strings.Lines(stdout) {
		f := cols.Split(strings.TrimSpace(line), -1)
		if len(f) != 9 || !regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			continue
		}
		rows = append(rows, summaryRow{requestID: f[1], overhead: parseMs(t, f[6])})
	}
	return rows
}

// checkSummary checks the overheads derived from the events (the report's duration less
// the runtimeDone's) against the "extensions after response" the emulator printed, which
// it measures directly.
func checkSummary(t *testing.T, s *stream, rows []summaryRow) {
	t.Helper()
	if len(rows) != len(s.invocations) {
		t.Errorf("the summary has %d invocations, the events %d", len(rows), len(s.invocations))
	}
	for _, row := range rows {
		if _, ok := s.overhead[row.requestID]; !ok && row.overhead == 0 {
			continue // timed out or failed: not measured
		}
		// Both are rounded: to 10 µs in the summary, to 1 µs in the events.
		if d := row.overhead - s.overhead[row.requestID]; d > 20*time.Microsecond || d < -20*time.Microsecond {
			t.Errorf("invocation %s: the summary says the extensions took %v after the response, the events %v",
				row.requestID, row.overhead, s.overhead[row.requestID])
		}
	}
}

func parseMs(t *testing.T, s string) time.Duration {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, " ms"), 64)
	if err != nil {
		t.Fatalf("a duration of the summary: %q: %v", s, err)
	}
	return time.Duration(v * float64(time.Millisecond))
}

// median of ds, 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// events is the payloads of invocations that all send payload.
func events(payload string) []string { return []string{payload} }

// linesEvent is the payload of the hello action that writes text and JSON lines, then
// sleeps.
func linesEvent(text, jsonLines int, sleep time.Duration) string {
	return fmt.Sprintf(`{"action":"lines","lines":%d,"jsonLines":%d,"sleepMs":%d}`, text, jsonLines, sleep.Milliseconds())
}
