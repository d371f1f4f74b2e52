package extension

import "github.com/lambda-otel/lambda-otel/telemetry"

// maxOutstanding bounds the request ids followed: ids whose events never come (an
// environment killed mid-invocation) must not pile up.
const maxOutstanding = 1024

// outstanding counts, per request id, the INVOKEs whose platform.runtimeDone and
// platform.report have not been converted yet. The retries of an asynchronous invocation
// share its request id, so an earlier attempt's event still in the buffer would otherwise
// be taken for the latest attempt's, and the wait for it would end too soon.
type outstanding struct {
	runtimeDone, report map[string]int
}

func newOutstanding() outstanding {
	return outstanding{runtimeDone: map[string]int{}, report: map[string]int{}}
}

// invoked counts an INVOKE.
func (o outstanding) invoked(requestID string) {
	follow(o.runtimeDone, requestID)
	follow(o.report, requestID)
}

func follow(m map[string]int, requestID string) {
	if len(m) >= maxOutstanding {
		clear(m)
	}
	m[requestID]++
}

// converted counts off the platform events among events.
func (o outstanding) converted(events []telemetry.Event) {
	for i := range events {
		switch r := events[i].Record.(type) {
		case *telemetry.RuntimeDone:
			settle(o.runtimeDone, r.RequestID)
		case *telemetry.Report:
			settle(o.report, r.RequestID)
		}
	}
}

func settle(m map[string]int, requestID string) {
	switch n := m[requestID]; {
	case n > 1:
		m[requestID] = n - 1
	case n == 1:
		delete(m, requestID)
	}
}

// runtimeDoneIn reports whether the runtimeDone of every INVOKE of requestID is converted.
func (o outstanding) runtimeDoneIn(requestID string) bool { return o.runtimeDone[requestID] == 0 }

// reportIn reports whether the report of every INVOKE of requestID is converted.
func (o outstanding) reportIn(requestID string) bool { return o.report[requestID] == 0 }
