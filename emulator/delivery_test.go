package emulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Logs API: its own event names, strings for every line, runtimeDone only with schema
// 2021-03-18, and no Telemetry API events.
func TestLogsAPISubscriber(t *testing.T) {
	for _, schema := range []string{"2020-08-15", "2021-03-18"} {
		t.Run(schema, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "recorder")
			f.setEnv("RECORDER_API=logs", "RECORDER_SCHEMA="+schema)
			f.cfg.LogFormat = "JSON"
			e := f.start(t)
			invoke(t, e, `{}`)
			invoke(t, e, `{"action":"crash"}`)
			shutdown(t, e)
			r := f.recorded(t, "recorder")
			got := r.platformTypes()
			for _, want := range []string{"extension", "logsSubscription", "start", "end", "report", "fault"} {
				if !slices.Contains(got, want) {
					t.Errorf("no platform.%s in %v", want, got)
				}
			}
			for _, unwanted := range []string{"initStart", "telemetrySubscription"} {
				if slices.Contains(got, unwanted) {
					t.Errorf("Telemetry API event platform.%s delivered to a Logs API subscriber", unwanted)
				}
			}
			if slices.Contains(got, "runtimeDone") != (schema == "2021-03-18") {
				t.Errorf("runtimeDone delivered = %v with schema %s", slices.Contains(got, "runtimeDone"), schema)
			}
			for _, ev := range r.ofType("function") {
				if ev.Record[0] != '"' {
					t.Fatalf("Logs API function record is not a string: %s", ev.Record)
				}
			}
		})
	}
}

// With the JSON log format, the newest Telemetry schema receives JSON lines as objects and
// the older one as strings; TCP subscribers receive NDJSON.
func TestJSONLinesAndTCP(t *testing.T) {
	tests := []struct {
		name, schema, protocol string
		objects                bool
	}{
		{"2022-12-13 over HTTP", "2022-12-13", "HTTP", true},
		{"2022-07-01 over HTTP", "2022-07-01", "HTTP", false},
		{"2022-12-13 over TCP", "2022-12-13", "TCP", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "recorder")
			f.setEnv("RECORDER_SCHEMA="+tt.schema, "RECORDER_PROTOCOL="+tt.protocol)
			f.cfg.LogFormat = "JSON"
			e := f.start(t)
			invoke(t, e, `{}`)
			shutdown(t, e)
			r := f.recorded(t, "recorder")
			objects, texts := 0, 0
			for _, ev := range r.ofType("function") {
				if ev.Record[0] == '{' {
					objects++
				} else {
					texts++
				}
			}
			if (objects > 0) != tt.objects || texts == 0 {
				t.Errorf("function records: %d objects, %d strings", objects, texts)
			}
			if got := r.platformTypes(); len(got) < 8 || got[len(got)-1] != "report" {
				t.Errorf("platform events = %v", got)
			}
		})
	}
}

// A subscriber slower than a log flood loses lines, and platform.logsDropped says how many:
// every line generated is delivered or counted.
func TestLogsDroppedUnderFlood(t *testing.T) {
	f := newFixture(t, "recorder")
	f.setEnv("RECORDER_DELAY_MS=100")
	eventsOut := filepath.Join(t.TempDir(), "events.jsonl")
	out, err := os.Create(eventsOut)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	f.cfg.EventsOut = out
	e := f.start(t)
	const lines = 30000
	invoke(t, e, `{"action":"flood","lines":`+strconv.Itoa(lines)+`}`)
	shutdown(t, e)
	generated := countLines(t, eventsOut)
	r := f.recorded(t, "recorder")
	delivered := len(r.ofType("function")) + len(r.ofType("extension"))
	var dropped int
	for _, ev := range r.ofType("platform.logsDropped") {
		dropped += int(ev.record()["droppedRecords"].(float64))
	}
	if dropped == 0 {
		t.Fatalf("no lines dropped for a subscriber taking 100 ms per delivery of a %d-line flood", lines)
	}
	if generated < lines || delivered+dropped != generated {
		t.Errorf("generated %d log lines, delivered %d + dropped %d = %d", generated, delivered, dropped, delivered+dropped)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct{ Type string }
		json.Unmarshal(sc.Bytes(), &ev)
		if ev.Type == "function" || ev.Type == "extension" {
			n++
		}
	}
	return n
}

// With --freeze every process is stopped between invocations, and nothing is lost or
// repeated across freeze and thaw.
func TestFreeze(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads process states from /proc")
	}
	f := newFixture(t, "recorder")
	f.cfg.Freeze = true
	e := f.start(t)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, invoke(t, e, `{}`).RequestID)
		// The invoke phase ends after the answer; the next Invoke waits for it, so check the
		// state once the environment is idle: Records grows at the end of the phase.
		waitFor(t, func() bool { return len(e.Records()) == i+1 })
		env := e.current()
		env.mu.Lock()
		procs := env.procs()
		env.mu.Unlock()
		for _, p := range procs {
			// SIGSTOP takes effect shortly after it is sent.
			waitFor(t, func() bool { return procState(p.Pid()) == "T" })
		}
	}
	shutdown(t, e)
	r := f.recorded(t, "recorder")
	var reported []string
	for _, ev := range r.ofType("platform.report") {
		reported = append(reported, ev.record()["requestId"].(string))
	}
	if !slices.Equal(reported, ids) {
		t.Errorf("reports for %v, want exactly %v", reported, ids)
	}
	seen := map[string]bool{}
	for _, ev := range r.tele {
		key := ev.Time + ev.Type + string(ev.Record)
		if seen[key] && ev.Type != "function" {
			t.Errorf("delivered twice: %s %s", ev.Type, ev.Record)
		}
		seen[key] = true
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		runtime.Gosched()
	}
}

func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "gone"
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return fields[0]
}
