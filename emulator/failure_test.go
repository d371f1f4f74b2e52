package emulator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func errorType(t *testing.T, resp *Response) string {
	t.Helper()
	if resp.FunctionError != "Unhandled" {
		t.Fatalf("FunctionError = %q, want Unhandled (payload %s)", resp.FunctionError, resp.Payload)
	}
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(resp.Payload, &doc); err != nil {
		t.Fatalf("error payload %s: %v", resp.Payload, err)
	}
	return doc.ErrorType
}

// statusOf returns the status and errorType of the record of type typ for request id.
func statusOf(r recorded, typ, id string) (string, string) {
	for _, ev := range r.ofType(typ) {
		rec := ev.record()
		if rec["requestId"] == id {
			s, _ := rec["status"].(string)
			et, _ := rec["errorType"].(string)
			return s, et
		}
	}
	return "missing", ""
}

// Each way an invocation can fail: what the caller gets, what the telemetry says, whether
// the environment is reset (SHUTDOWN with a reason, then a suppressed init with phase
// "invoke") and that the next invocation works.
func TestInvocationFailures(t *testing.T) {
	tests := []struct {
		name, payload         string
		memoryMB              int
		errorType             string
		runtimeDone, report   string
		shutdownReason        string // "" when the environment is kept
		reportErrorTypePrefix string
	}{
		{name: "function error", payload: `{"action":"error"}`, errorType: "PaymentDeclinedError", runtimeDone: "error", report: "error"},
		{name: "timeout", payload: `{"action":"hang"}`, errorType: "Sandbox.Timedout", runtimeDone: "timeout", report: "timeout", shutdownReason: "timeout"},
		{name: "crash", payload: `{"action":"crash"}`, errorType: "Runtime.ExitError", runtimeDone: "failure", report: "error", shutdownReason: "failure"},
		{name: "out of memory", payload: `{"action":"oom","mb":200}`, memoryMB: 128, errorType: "Runtime.OutOfMemory", runtimeDone: "failure", report: "error", shutdownReason: "failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "recorder")
			// Long enough for the out-of-memory case to allocate on a loaded machine.
			f.cfg.Timeout = 1500 * time.Millisecond
			f.cfg.MemoryMB = tt.memoryMB
			e := f.start(t)
			first := invoke(t, e, `{"action":"ok"}`)
			failed := invoke(t, e, tt.payload)
			if got := errorType(t, failed); got != tt.errorType {
				t.Errorf("caller's errorType = %q, want %q (%s)", got, tt.errorType, failed.Payload)
			}
			after := invoke(t, e, `{"action":"ok"}`)
			if after.FunctionError != "" {
				t.Errorf("the invocation after the failure failed: %s", after.Payload)
			}
			shutdown(t, e)
			r := f.recorded(t, "recorder")
			if s, et := statusOf(r, "platform.runtimeDone", failed.RequestID); s != tt.runtimeDone || et != tt.errorType {
				t.Errorf("runtimeDone = %s/%s, want %s/%s", s, et, tt.runtimeDone, tt.errorType)
			}
			if s, et := statusOf(r, "platform.report", failed.RequestID); s != tt.report || et != tt.errorType {
				t.Errorf("report = %s/%s, want %s/%s", s, et, tt.report, tt.errorType)
			}
			if s, _ := statusOf(r, "platform.report", after.RequestID); s != "success" {
				t.Errorf("report of the invocation after = %s", s)
			}
			var reasons []string
			for _, ev := range r.events {
				if ev["eventType"] == "SHUTDOWN" {
					reasons = append(reasons, ev["shutdownReason"].(string))
				}
			}
			wantReasons := []string{"spindown"}
			if tt.shutdownReason != "" {
				wantReasons = []string{tt.shutdownReason, "spindown"}
			}
			if !slices.Equal(reasons, wantReasons) {
				t.Errorf("SHUTDOWN reasons = %v, want %v", reasons, wantReasons)
			}
			var phases []string
			for _, ev := range r.ofType("platform.initStart") {
				phases = append(phases, ev.record()["phase"].(string))
			}
			wantPhases := []string{"init"}
			if tt.shutdownReason != "" {
				wantPhases = []string{"init", "invoke"}
			}
			if !slices.Equal(phases, wantPhases) {
				t.Errorf("initStart phases = %v, want %v", phases, wantPhases)
			}
			if tt.shutdownReason != "" != e.Failed() {
				t.Errorf("Failed() = %v", e.Failed())
			}
			if recs := e.Records(); len(recs) != 3 || recs[0].RequestID != first.RequestID || recs[1].Status != tt.report {
				t.Errorf("records = %+v", recs)
			}
		})
	}
}

// An extension that reports an init error fails the init; the caller of the invocation that
// needed it gets the error, and the next invocation retries the init.
func TestInitErrors(t *testing.T) {
	t.Run("extension init error", func(t *testing.T) {
		f := newFixture(t, "recorder")
		f.setEnv("RECORDER_INIT_ERROR=Extension.ConfigInvalid")
		e := f.start(t)
		resp := invoke(t, e, `{}`)
		if got := errorType(t, resp); got != "Extension.ConfigInvalid" {
			t.Errorf("errorType = %q", got)
		}
		shutdown(t, e)
		if !e.Failed() {
			t.Error("Failed() = false after a failed init")
		}
		if out := f.log.String(); !strings.Contains(out, "INIT_REPORT Init Duration:") || !strings.Contains(out, "Status: error\tError Type: Extension.ConfigInvalid") {
			t.Errorf("no INIT_REPORT line in\n%s", out)
		}
	})
	t.Run("missing bootstrap", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.Bootstrap = f.cfg.TaskDir + "/missing"
		e := f.start(t)
		resp := invoke(t, e, `{}`)
		if got := errorType(t, resp); got != "Runtime.InvalidEntrypoint" || !strings.Contains(string(resp.Payload), "Couldn't find valid bootstrap(s)") {
			t.Errorf("answer = %s", resp.Payload)
		}
	})
}

// An extension that ignores SHUTDOWN is killed at the deadline, which is deadlineMs.
func TestShutdownDeadline(t *testing.T) {
	f := newFixture(t, "recorder")
	f.setEnv("RECORDER_IGNORE_SHUTDOWN=1")
	f.cfg.ShutdownTimeout = 300 * time.Millisecond
	e := f.start(t)
	invoke(t, e, `{}`)
	before := time.Now()
	rep := shutdown(t, e)
	if !slices.Equal(rep.Killed, []string{"recorder"}) || !e.Failed() {
		t.Errorf("killed = %v, Failed = %v", rep.Killed, e.Failed())
	}
	r := f.recorded(t, "recorder")
	sd := r.events[len(r.events)-1]
	deadline := time.UnixMilli(int64(sd["deadlineMs"].(float64)))
	if sd["eventType"] != "SHUTDOWN" || deadline.Before(before) || deadline.After(before.Add(f.cfg.ShutdownTimeout+time.Second)) {
		t.Errorf("SHUTDOWN = %v (sent after %v)", sd, before)
	}
	if r.kinds[len(r.kinds)-1] == "exit" {
		t.Error("the recorder exited on its own; it should have been killed")
	}
}
