package e2e

import (
	"fmt"
	"syscall"
	"testing"
)

// floodLines is the size of the flood: far more than one Telemetry API delivery (at most
// 10,000 events and 256 KiB) and than one 4 MiB gRPC message once converted.
const floodLines = 50000

// floodMaxRSSKiB bounds the extension's peak resident memory through the flood: it shares
// the function's memory, 128 MB here. Measured at 40 to 80 MiB (ru_maxrss) over a dozen
// runs, the spread being the garbage collector's pacing: the live heap peaks at about
// 31 MiB, some 600 bytes per line held between the platform's delivery and the export.
const floodMaxRSSKiB = 112 << 10

// TestLogFlood writes 50,000 lines in one invocation, between ordinary ones: the extension
// survives, every line reaches the backend or is counted (by the platform's logsDropped
// or by the extension), over OTLP/HTTP and OTLP/gRPC, whose receivers refuse messages
// over 4 MiB, and its memory stays bounded.
func TestLogFlood(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		grpc bool
	}{
		{"http", false},
		{"grpc", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, tc.grpc)
			r := runEmulator(t, b, runConfig{
				events: []string{okEvent, fmt.Sprintf(`{"action":"flood","lines":%d}`, floodLines), okEvent},
				n:      3,
				env:    []string{"LAMBDA_OTEL_FLUSH=end"},
			})
			got := receive(b.rcv)
			checkAccounting(t, r, got, expect{})
			logFigures(t, r, got)
			// The flood, two ok invocations of 5 lines, and 2 lines at init.
			if want := floodLines + 2*5 + 2; r.stream.functionLines != want {
				t.Errorf("the function wrote %d lines, want %d", r.stream.functionLines, want)
			}
			if r.maxRSSKiB == 0 {
				t.Errorf("the extension's peak memory was not recorded")
			} else if r.maxRSSKiB > floodMaxRSSKiB {
				t.Errorf("the extension's peak resident memory was %d KiB, over %d KiB", r.maxRSSKiB, floodMaxRSSKiB)
			}
		})
	}
}

// TestFloodWhileTheExtensionStalls stops the extension (SIGSTOP) while the function floods,
// as an extension starved of CPU falls behind: the platform drops the lines it has no room
// for and says so in platform.logsDropped, which the extension turns into a log record and
// the aws.lambda.logs_dropped metric. Every line is delivered or counted in it.
func TestFloodWhileTheExtensionStalls(t *testing.T) {
	t.Parallel()
	b := newBackend(t, false)
	const stalled = 1
	r := runEmulator(t, b, runConfig{
		events: []string{okEvent, fmt.Sprintf(`{"action":"flood","lines":%d}`, floodLines), okEvent},
		n:      3,
		env:    []string{"LAMBDA_OTEL_FLUSH=end"},
		// The extension is stopped once the invocation before the flood is over, waiting
		// for its next event, and goes on once the flood's response is in.
		after: func(i int, h *runHandle, requestID string) {
			switch i {
			case stalled - 1:
				h.awaitReport(t, requestID)
				h.signal(t, syscall.SIGSTOP)
			case stalled:
				h.signal(t, syscall.SIGCONT)
			}
		},
	})
	got := receive(b.rcv)
	checkAccounting(t, r, got, expect{})
	logFigures(t, r, got)
	if r.stream.platformDropped == 0 {
		t.Errorf("the platform dropped nothing; the stall was meant to make it")
	}
}
