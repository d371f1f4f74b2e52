package emulator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// A cold start and two warm invocations, seen by a subscribed extension: the event sequence
// and the schema of each platform record.
func TestColdStartAndWarmInvokes(t *testing.T) {
	f := newFixture(t, "recorder")
	e := f.start(t)
	var ids []string
	for i := 0; i < 3; i++ {
		resp := invoke(t, e, `{"action":"ok","message":"n`+string(rune('0'+i))+`"}`)
		if resp.FunctionError != "" {
			t.Fatalf("invoke %d: function error %s: %s", i, resp.FunctionError, resp.Payload)
		}
		var out struct {
			OK        bool   `json:"ok"`
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(resp.Payload, &out); err != nil || !out.OK || out.RequestID != resp.RequestID {
			t.Fatalf("invoke %d: response %s (err %v), want ok with request id %s", i, resp.Payload, err, resp.RequestID)
		}
		ids = append(ids, resp.RequestID)
	}
	rep := shutdown(t, e)
	if len(rep.Killed) != 0 {
		t.Errorf("killed at shutdown: %v", rep.Killed)
	}
	recs := e.Records()
	// Only the cold start tells each extension's start-up, which init contains.
	if len(recs) != 3 {
		t.Fatalf("records = %d, want 3", len(recs))
	}
	if s := recs[0].ExtensionStartup; len(s) != 1 || s[0].Name != "recorder" || s[0].Duration <= 0 || s[0].Duration > recs[0].InitDuration {
		t.Errorf("cold start's extension start-up = %+v, want recorder's, within init (%v)", s, recs[0].InitDuration)
	}
	if s := recs[1].ExtensionStartup; s != nil {
		t.Errorf("warm invocation's extension start-up = %+v, want none", s)
	}
	r := f.recorded(t, "recorder")
	// The runtime starts once the extension has registered, so the extension's subscription
	// and the runtime's init may come in either order; both precede the end of init.
	got := r.platformTypes()
	sub := slices.Index(got, "telemetrySubscription")
	if sub < 0 || sub > slices.Index(got, "initReport") {
		t.Errorf("telemetrySubscription missing or after initReport: %v", got)
	}
	got = slices.DeleteFunc(got, func(s string) bool { return s == "telemetrySubscription" })
	want := []string{"initStart", "extension", "initRuntimeDone", "initReport",
		"start", "runtimeDone", "report", "start", "runtimeDone", "report", "start", "runtimeDone", "report"}
	if !slices.Equal(got, want) {
		t.Errorf("platform events:\n got %v\nwant %v", got, want)
	}
	if got := len(r.events); got != 4 {
		t.Fatalf("extension events = %d, want 3 INVOKE and a SHUTDOWN", got)
	}
	for i, ev := range r.events[:3] {
		if ev["eventType"] != "INVOKE" || ev["requestId"] != ids[i] || !strings.HasSuffix(ev["invokedFunctionArn"].(string), ":function:hello-fn") {
			t.Errorf("event %d = %v", i, ev)
		}
	}
	if sd := r.events[3]; sd["eventType"] != "SHUTDOWN" || sd["shutdownReason"] != "spindown" {
		t.Errorf("shutdown event = %v", sd)
	}
	reports := r.ofType("platform.report")
	for i, ev := range reports {
		rec := ev.record()
		m := rec["metrics"].(map[string]any)
		_, hasInit := m["initDurationMs"]
		if rec["requestId"] != ids[i] || rec["status"] != "success" || hasInit != (i == 0) || m["memorySizeMB"] != 128.0 || m["maxMemoryUsedMB"].(float64) <= 0 {
			t.Errorf("report %d = %v", i, rec)
		}
	}
	fn := r.ofType("function")
	if len(fn) < 4 {
		t.Errorf("function lines = %d, want the init lines and each invocation's", len(fn))
	}
	if len(r.ofType("extension")) == 0 {
		t.Error("no extension lines delivered")
	}
}
