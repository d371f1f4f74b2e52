package e2e

import (
	"testing"
	"time"
)

// TestFlushStrategies runs each flush strategy against a healthy backend, with and without
// the environment frozen between invocations: exact counts each, with no duplicates (a
// request sent again after a thaw would show).
func TestFlushStrategies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		flush  string
		freeze bool
	}{
		{"end", false},
		// The invocations last 20 ms, so a period of 50 ms passes every few invocations and
		// flushes run during them.
		{"periodic,50", false},
		{"adaptive", false},
		{"shutdown", false},
		{"end", true},
		{"periodic,50", true},
	}
	for _, tc := range tests {
		name := tc.flush
		if tc.freeze {
			name += " frozen between invocations"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, false)
			rc := runConfig{
				events: events(linesEvent(3, 2, 20*time.Millisecond)),
				n:      invokes,
				env:    []string{"LAMBDA_OTEL_FLUSH=" + tc.flush},
			}
			if tc.freeze {
				rc.flags = []string{"--freeze"}
			}
			r := runEmulator(t, b, rc)
			got := receive(b.rcv)
			checkAccounting(t, r, got, expect{})
			logFigures(t, r, got)
			// Cross-check with hard numbers: init has 7 events (initStart, the extension's
			// and the subscription's events, 2 lines, initRuntimeDone, initReport), each
			// invocation 8 (start, 3 + 2 lines, runtimeDone, report).
			if want := 7 + 8*invokes; got.logs != want {
				t.Errorf("%d log records, want %d", got.logs, want)
			}
			if want := 1 + invokes; len(got.spans) != want {
				t.Errorf("%d spans, want %d", len(got.spans), want)
			}
		})
	}
}
