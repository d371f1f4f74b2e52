package extension

import (
	"testing"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// The report of an asynchronous invocation's earlier attempt does not count as the
// latest attempt's: only as many reports as INVOKEs do.
func TestOutstandingCountsAttempts(t *testing.T) {
	o := newOutstanding()
	report := func(id string) []telemetry.Event {
		return []telemetry.Event{{Record: &telemetry.RuntimeDone{RequestID: id}}, {Record: &telemetry.Report{RequestID: id}}}
	}
	steps := []struct {
		invoke, convert string
		in              bool // whether every attempt of "a" is in afterwards
	}{
		{invoke: "a", in: false},
		{convert: "a", in: true},
		{invoke: "a", in: false}, // a retry
		{invoke: "b", in: false}, // another event between the attempts
		{invoke: "a", in: false}, // the last retry
		{convert: "a", in: false},
		{convert: "b", in: false},
		{convert: "a", in: true},
		{convert: "a", in: true}, // a redelivery changes nothing
	}
	for i, st := range steps {
		if st.invoke != "" {
			o.invoked(st.invoke)
		}
		if st.convert != "" {
			o.converted(report(st.convert))
		}
		if got := o.reportIn("a"); got != st.in || o.runtimeDoneIn("a") != st.in {
			t.Errorf("step %d: reportIn = %v, runtimeDoneIn = %v; want %v", i, got, o.runtimeDoneIn("a"), st.in)
		}
	}
	if !o.reportIn("b") || len(o.report) != 0 || len(o.runtimeDone) != 0 {
		t.Errorf("after every report: %v %v", o.report, o.runtimeDone)
	}
	for i := range maxOutstanding + 1 {
		o.invoked(string(rune('A' + i)))
	}
	if len(o.report) > maxOutstanding {
		t.Errorf("%d ids followed, more than %d", len(o.report), maxOutstanding)
	}
}
