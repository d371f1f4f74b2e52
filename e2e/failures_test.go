package e2e

import (
	"testing"
)

// TestFunctionFailures runs an invocation that times out, crashes or runs out of memory
// between ordinary ones. The platform resets the environment (a SHUTDOWN, then a new
// init), and the failed invocation's span, with status Error and its errorType, and its
// log records reach the backend, with everything else.
func TestFunctionFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event string
		flags       []string
		// errorType is the failed invocation's report's, and its span's status message.
		errorType string
	}{
		{"timeout", `{"action":"hang"}`, []string{"--timeout", "1s"}, "Sandbox.Timedout"},
		{"crash", `{"action":"crash"}`, nil, "Runtime.ExitError"},
		{"out of memory", `{"action":"oom","mb":200}`, []string{"--memory-mb", "128"}, "Runtime.OutOfMemory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, false)
			r := runEmulator(t, b, runConfig{
				events: []string{okEvent, okEvent, tc.event, okEvent, okEvent},
				n:      5,
				// A budget well under the 1 s timeout, so that the flush at each invocation's
				// end still fits before its deadline.
				env:    []string{"LAMBDA_OTEL_FLUSH=end", "LAMBDA_OTEL_FLUSH_TIMEOUT_MS=300"},
				flags:  tc.flags,
				failed: true,
			})
			got := receive(b.rcv)
			checkAccounting(t, r, got, expect{})
			logFigures(t, r, got)
			s := r.stream
			if s.inits != 2 {
				t.Errorf("%d environments, want 2: the failure resets the first", s.inits)
			}
			failedID := s.invocations[2]
			if rep := s.reports[failedID]; rep.ErrorType != tc.errorType {
				t.Errorf("the platform reported the failed invocation as %+v, want errorType %s", rep, tc.errorType)
			}
			var failed []span
			for _, sp := range got.spans {
				if sp.failed {
					failed = append(failed, sp)
				}
			}
			if len(failed) != 1 || failed[0].invocationID != failedID || failed[0].statusMessage != tc.errorType {
				t.Errorf("failed spans %+v, want one for %s with status %s", failed, failedID, tc.errorType)
			}
			// Its lines and platform events, each one log record carrying its request id.
			if want := s.byInvocation[failedID]; want < 4 || got.byInvocation[failedID] != want {
				t.Errorf("%d log records of the failed invocation, want %d (its platform events and lines, at least 4)",
					got.byInvocation[failedID], want)
			}
		})
	}
}
