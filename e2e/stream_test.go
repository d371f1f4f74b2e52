package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// event is one line of the emulator's --events-out: every Telemetry API event it generated.
type event struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// stream is what the platform generated in a run, and what follows from it for the
// extension's output by the rules of docs/data.md.
type stream struct {
	// generated counts every event.
	generated int
	// platformDropped is what the platform's logsDropped events say it did not deliver.
	platformDropped int
	// undeliverable counts the extension's own lines written after it stopped listening,
	// at shutdown: each environment's trailing extension lines.
	undeliverable int
	// inits counts the environments (platform.initStart); invocations are the request ids
	// of platform.start, in order.
	inits       int
	invocations []string
	// reports are the platform.report records by request id.
	reports map[string]report
	// overhead is each invocation's extensions' time after the runtime's response: the
	// report's duration less the runtimeDone's. An invocation that timed out or whose
	// runtime failed has none: the platform ends it without waiting for the extensions.
	overhead map[string]time.Duration
	// extension holds the extension's own log lines, read as JSON.
	extension []extLine
	// functionLines counts the function's lines.
	functionLines int
	// byInvocation counts the events of each request id: its platform events and the
	// function lines that name it.
	byInvocation map[string]int
}

type report struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Metrics   struct {
		DurationMs float64 `json:"durationMs"`
	} `json:"metrics"`
}

// extLine is a line the extension logged.
type extLine struct {
	Msg      string `json:"msg"`
	Level    string `json:"level"`
	Exporter string `json:"exporter"`
	Signal   string `json:"signal"`
	Items    int    `json:"items"`
	Reason   string `json:"reason"`
	// Counts and Exports are in the debug line at shutdown.
	Counts  map[string]int `json:"counts"`
	Exports []struct {
		Exporter, Signal, Outcome string
		Items                     int
	} `json:"exports"`
	// delivered is false for the lines the extension wrote after it stopped listening.
	delivered bool
}

// deliverable is what the extension could receive: one log record each with the default
// LAMBDA_OTEL_PLATFORM_LOGS=all.
func (s *stream) deliverable() int { return s.generated - s.platformDropped - s.undeliverable }

// spans is one per phase: each init and each invocation.
func (s *stream) spans() int { return s.inits + len(s.invocations) }

// drops sums the extension's "telemetry dropped" lines by signal and reason.
func (s *stream) drops() map[string]int {
	m := map[string]int{}
	for _, l := range s.extension {
		if l.Msg == "telemetry dropped" {
			m[l.Signal+"/"+l.Reason] += l.Items
		}
	}
	return m
}

// selfCount sums a figure of the extension's shutdown lines (one per environment):
// "events", "dropped_buffer_full", ….
func (s *stream) selfCount(key string) (n, lines int) {
	for _, l := range s.extension {
		if l.Msg == "shutdown" && l.Counts != nil {
			n += l.Counts[key]
			lines++
		}
	}
	return n, lines
}

// countMsg counts the extension's lines with msg.
func (s *stream) countMsg(msg string) int {
	n := 0
	for _, l := range s.extension {
		if l.Msg == msg {
			n++
		}
	}
	return n
}

// outcomes counts the reports by status, and those of errorType Runtime.OutOfMemory.
func (s *stream) outcomes() (failed, timeouts, oom int) {
	for _, r := range s.reports {
		if r.Status != "success" {
			failed++
		}
		if r.Status == "timeout" {
			timeouts++
		}
		if r.ErrorType == "Runtime.OutOfMemory" {
			oom++
		}
	}
	return failed, timeouts, oom
}

func readStream(t *testing.T, path string) *stream {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v: %s", path, err, sc.Bytes())
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return analyse(t, evs)
}

func analyse(t *testing.T, evs []event) *stream {
	t.Helper()
	s := &stream{generated: len(evs), reports: map[string]report{}, overhead: map[string]time.Duration{}, byInvocation: map[string]int{}}
	// runtimeDone holds the durations of the invocations whose runtime asked for the next
	// one (status success or error).
	runtimeDone := map[string]float64{}
	// An environment's trailing extension lines came after its last platform event, at
	// shutdown, when the extension had closed its listener.
	trailing := make([]bool, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		switch {
		case evs[i].Type == "extension" && (i == len(evs)-1 || trailing[i+1] || evs[i+1].Type == "platform.initStart"):
			trailing[i] = true
			s.undeliverable++
		}
	}
	for i, e := range evs {
		var named struct {
			RequestID string `json:"requestId"`
		}
		if json.Unmarshal(e.Record, &named) == nil && named.RequestID != "" {
			s.byInvocation[named.RequestID]++
		}
		switch e.Type {
		case "platform.initStart":
			s.inits++
		case "platform.start":
			var r struct {
				RequestID string `json:"requestId"`
			}
			mustUnmarshal(t, e.Record, &r)
			s.invocations = append(s.invocations, r.RequestID)
		case "platform.runtimeDone":
			var r struct {
				RequestID string `json:"requestId"`
				Status    string `json:"status"`
				Metrics   struct {
					DurationMs float64 `json:"durationMs"`
				} `json:"metrics"`
			}
			mustUnmarshal(t, e.Record, &r)
			if r.Status == "success" || r.Status == "error" {
				runtimeDone[r.RequestID] = r.Metrics.DurationMs
			}
		case "platform.report":
			var r struct {
				report
				RequestID string `json:"requestId"`
			}
			mustUnmarshal(t, e.Record, &r)
			s.reports[r.RequestID] = r.report
			if d, ok := runtimeDone[r.RequestID]; ok {
				s.overhead[r.RequestID] = time.Duration((r.Metrics.DurationMs - d) * float64(time.Millisecond))
			}
		case "platform.logsDropped":
			var r struct {
				DroppedRecords int `json:"droppedRecords"`
			}
			mustUnmarshal(t, e.Record, &r)
			s.platformDropped += r.DroppedRecords
		case "function":
			s.functionLines++
			var line string
			mustUnmarshal(t, e.Record, &line)
			for _, id := range s.invocations {
				if strings.Contains(line, id) {
					s.byInvocation[id]++
				}
			}
		case "extension":
			var line string
			mustUnmarshal(t, e.Record, &line)
			var l extLine
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &l) == nil {
				l.delivered = !trailing[i]
				s.extension = append(s.extension, l)
			}
		}
	}
	return s
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("reading %s: %v", b, err)
	}
}
