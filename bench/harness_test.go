package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/lambda-otel/lambda-otel/emulator"
	"github.com/lambda-otel/lambda-otel/internal/otlptest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// callTimeout bounds every call into the emulator.
const callTimeout = 60 * time.Second

// stage lays out a function directory with the example function as its bootstrap and ext
// as its one extension, and returns the emulator's configuration for it.
func stage(tb testing.TB, ext string, env ...string) emulator.Config {
	tb.Helper()
	root := tb.TempDir()
	task, exts := filepath.Join(root, "task"), filepath.Join(root, "opt", "extensions")
	for _, d := range []string{task, exts} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Symlink(bins.hello, filepath.Join(task, "bootstrap")); err != nil {
		tb.Fatal(err)
	}
	if err := os.Symlink(ext, filepath.Join(exts, filepath.Base(ext))); err != nil {
		tb.Fatal(err)
	}
	// The output is kept to be shown when the experiment fails; its tail is enough.
	log := &tail{max: 16 << 10}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("emulator output, last %d bytes:\n%s", log.max, log.String())
		}
	})
	return emulator.Config{
		ExtensionsDir: exts, TaskDir: task, FunctionName: "bench", Log: log,
		Env: env, ShutdownTimeout: 2 * time.Second,
	}
}

// tail keeps the last max bytes written to it, so that a stream of log lines costs the
// experiment little memory.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// otelEnv points lambda-otel at the receiver, with its listener and its local OTLP
// receiver (on, as by default) on free ports, so that experiments never depend on 4243 or
// 4318 being free on this machine.
func otelEnv(tb testing.TB, r *otlptest.Receiver, extra ...string) []string {
	return append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.HTTPEndpoint, "LAMBDA_OTEL_LISTENER_PORT=0",
		"LAMBDA_OTEL_RECEIVER=http:" + strconv.Itoa(testbin.FreePort(tb))}, extra...)
}

func start(tb testing.TB, cfg emulator.Config) *emulator.Emulator {
	tb.Helper()
	e, err := emulator.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		e.Shutdown(ctx)
	})
	return e
}

func invoke(tb testing.TB, e *emulator.Emulator, payload string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := e.Invoke(ctx, emulator.Request{Payload: []byte(payload)})
	if err != nil {
		tb.Fatal(err)
	}
	if resp.FunctionError != "" {
		tb.Fatalf("function error %s: %s", resp.FunctionError, resp.Payload)
	}
}

func stop(tb testing.TB, e *emulator.Emulator) emulator.ShutdownReport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	rep, err := e.Shutdown(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if len(rep.Killed) > 0 {
		tb.Fatalf("extensions killed at the shutdown deadline: %v", rep.Killed)
	}
	return rep
}

// coldStart runs one environment through a cold start, one invocation and a shutdown, and
// returns the time its extension took from its start to its first event/next.
func coldStart(tb testing.TB, cfg emulator.Config) time.Duration {
	tb.Helper()
	e := start(tb, cfg)
	invoke(tb, e, `{"action":"ok"}`)
	stop(tb, e)
	recs := e.Records()
	if len(recs) == 0 || len(recs[0].ExtensionStartup) != 1 {
		tb.Fatalf("no extension start-up in the cold start's record: %+v", recs)
	}
	return recs[0].ExtensionStartup[0].Duration
}

// startups measures n cold starts of the floor and of lambda-otel, alternately so that
// both see the same machine, and returns each one's start-up times.
func startups(tb testing.TB, n int) (floor, otel []time.Duration) {
	r := otlptest.Start(tb)
	for range n {
		floor = append(floor, coldStart(tb, stage(tb, bins.floor)))
		otel = append(otel, coldStart(tb, stage(tb, bins.lambdaOtel, otelEnv(tb, r)...)))
	}
	return floor, otel
}

// Strategies are the flush strategies measured for per-invocation overhead, with the
// floor for `end`: the least any extension must wait to see an invocation's runtimeDone.
var strategies = []struct{ name, ext, env string }{
	{"end", "lambda-otel", "LAMBDA_OTEL_FLUSH=end"},
	{"floor-end", "floor", "FLOOR_WAIT_RUNTIME_DONE=1"},
	{"periodic", "lambda-otel", "LAMBDA_OTEL_FLUSH=periodic,100"},
	{"adaptive", "lambda-otel", "LAMBDA_OTEL_FLUSH=adaptive"},
	{"floor", "floor", ""},
}

// warmUp is the invocations left out of overhead figures: the cold one, and those before
// adaptive flushing has seen enough short gaps to flush periodically.
const warmUp = 5

// overheads runs n invocations, one every pace, and returns the extension's time after
// each warm invocation's response: the emulator's post-runtime extensions duration.
func overheads(tb testing.TB, cfg emulator.Config, n int, pace time.Duration) []time.Duration {
	tb.Helper()
	e := start(tb, cfg)
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for range n {
		invoke(tb, e, `{"action":"ok"}`)
		<-tick.C
	}
	stop(tb, e)
	recs := e.Records()
	if len(recs) != n {
		tb.Fatalf("%d records, want %d", len(recs), n)
	}
	var out []time.Duration
	for _, r := range recs[warmUp:] {
		out = append(out, r.ExtensionOverhead)
	}
	return out
}

// overheadOf measures n invocations, one every 10 ms, with the extension named ext
// ("lambda-otel" or "floor") and one more variable, env, when it is not empty.
func overheadOf(tb testing.TB, ext, env string, n int) []time.Duration {
	tb.Helper()
	bin, vars := bins.floor, []string(nil)
	if ext == "lambda-otel" {
		bin, vars = bins.lambdaOtel, otelEnv(tb, otlptest.Start(tb))
	}
	if env != "" {
		vars = append(vars, env)
	}
	return overheads(tb, stage(tb, bin, vars...), n, 10*time.Millisecond)
}

// backendLatency is the median round trip of a small OTLP/HTTP logs request to r.
func backendLatency(tb testing.TB, r *otlptest.Receiver, n int) time.Duration {
	tb.Helper()
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("latency probe")
	body, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		tb.Fatal(err)
	}
	var ds []time.Duration
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.HTTPEndpoint+"/v1/logs", bytes.NewReader(body))
		if err != nil {
			cancel()
			tb.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		begin := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			tb.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("the receiver answered %s", resp.Status)
		}
		ds = append(ds, time.Since(begin))
	}
	return median(ds)
}

// pidOf finds the running process whose executable is path. Linux only.
func pidOf(tb testing.TB, path string) int {
	tb.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		tb.Fatal(err)
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && exe == want {
			return pid
		}
	}
	tb.Fatalf("no process runs %s", want)
	return 0
}

// memory reads a process's resident set now and at its peak, in bytes.
func memory(tb testing.TB, pid int) (rss, peak int64) {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			tb.Fatalf("reading %s of process %d: %v", k, pid, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		tb.Fatalf("no VmRSS and VmHWM in /proc/%d/status", pid)
	}
	return rss, peak
}

// streamResult is what a log stream cost the extension.
type streamResult struct {
	idle, peak int64 // bytes: resident after init, and at most during the stream
	lines      int   // written by the function
}

// stream runs lambda-otel with its default settings while the function writes perTick
// lines every tick (100 ms) for d, and returns its memory. It checks that every line
// reached the receiver.
func stream(tb testing.TB, perTick int, d time.Duration) streamResult {
	tb.Helper()
	r := otlptest.Start(tb)
	e := start(tb, stage(tb, bins.lambdaOtel, otelEnv(tb, r)...))
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := e.Init(ctx); err != nil {
		tb.Fatal(err)
	}
	pid := pidOf(tb, bins.lambdaOtel)
	var res streamResult
	res.idle, _ = memory(tb, pid)
	const tick = 100 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	payload := fmt.Sprintf(`{"action":"lines","lines":%d,"jsonLines":%d}`, perTick*4/5, perTick/5)
	for end := time.Now().Add(d); time.Now().Before(end); {
		invoke(tb, e, payload)
		res.lines += perTick
		<-ticker.C
	}
	_, res.peak = memory(tb, pid)
	stop(tb, e)
	_, logs, _ := r.Counts()
	if want := res.lines - platformDropped(r); logs < want {
		tb.Errorf("the receiver has %d log records, want the %d lines written, less what the platform dropped, and more", logs, want)
	}
	return res
}

// shutdownFlush holds n log lines in lambda-otel (flushing only at shutdown) and returns
// the time from SHUTDOWN to its exit, every line exported by then.
func shutdownFlush(tb testing.TB, n int) time.Duration {
	tb.Helper()
	r := otlptest.Start(tb)
	e := start(tb, stage(tb, bins.lambdaOtel, otelEnv(tb, r, "LAMBDA_OTEL_FLUSH=shutdown", "LAMBDA_OTEL_PLATFORM_LOGS=none")...))
	// A thousand lines an invocation stay within what the platform buffers for a
	// subscriber; more at once and it may drop some, as Lambda does.
	const per = 1000
	for i := 0; i < n; i += per {
		invoke(tb, e, fmt.Sprintf(`{"action":"lines","lines":%d}`, min(per, n-i)))
	}
	rep := stop(tb, e)
	// The function also writes two lines at init.
	want := n + 2 - platformDropped(r)
	if _, logs, _ := r.Counts(); logs != want {
		tb.Fatalf("the receiver has %d log records, want the %d lines written less the %d the platform dropped",
			logs, n+2, n+2-want)
	}
	return rep.Duration
}

// platformDropped is the log records the platform reported dropping, as received in
// aws.lambda.logs_dropped, a cumulative sum.
func platformDropped(r *otlptest.Receiver) int {
	var n int64
	_, _, metrics := r.Received()
	for _, md := range metrics {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != "aws.lambda.logs_dropped" {
						continue
					}
					for _, dp := range m.Sum().DataPoints().All() {
						n = max(n, dp.IntValue())
					}
				}
			}
		}
	}
	return int(n)
}

func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(n int64) float64 { return float64(n) / 1e6 }
