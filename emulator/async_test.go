package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/destination"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

const (
	failureQueue = "arn:aws:sqs:us-east-1:123456789012:failures"
	deadLetters  = "arn:aws:sns:us-east-1:123456789012:dead-letters"
	bus          = "arn:aws:events:us-east-1:123456789012:event-bus/default"
	onSuccess    = "arn:aws:lambda:us-east-1:123456789012:function:on-success"
)

// asyncFixture is a function with the recording extension whose asynchronous clock runs a
// thousand times real time: a minute's retry delay is 60 ms.
func asyncFixture(t *testing.T, invokeConfig string) *fixture {
	f := newFixture(t, "rec")
	f.cfg.AsyncTimeScale = 0.001
	f.cfg.DestinationsDir = filepath.Join(t.TempDir(), "destinations")
	f.cfg.EventInvokeConfig = []byte(invokeConfig)
	return f
}

func drain(t *testing.T, e *Emulator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// destinationLines reads the NDJSON file standing in for target.
func destinationLines(t *testing.T, f *fixture, target string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.cfg.DestinationsDir, destination.FileName(target)))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: line %s: %v", target, line, err)
		}
		out = append(out, m)
	}
	return out
}

// A function error is retried MaximumRetryAttempts times after Lambda's delays, under the
// same request id, each attempt a whole invocation in the telemetry; then the record goes
// to the on-failure destination and the event to the dead-letter topic.
func TestAsyncRetriesUntilExhausted(t *testing.T) {
	// MaximumRetryAttempts is left to its default, 2.
	f := asyncFixture(t, `{"DestinationConfig":{"OnFailure":{"Destination":"`+failureQueue+`"}}}`)
	f.cfg.DeadLetterTarget = deadLetters
	e := f.start(t)
	event := `{"action":"error","message":"card stolen"}`
	id, err := e.InvokeAsync(Request{Payload: []byte(event)})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	shutdown(t, e)

	recs := e.Records()
	if len(recs) != 3 {
		t.Fatalf("%d invocations, want 3 attempts", len(recs))
	}
	for i, r := range recs {
		if r.RequestID != id || r.Attempt != i+1 || r.Status != statusError || r.ErrorType != "PaymentDeclinedError" {
			t.Errorf("attempt %d: %+v", i+1, r)
		}
	}
	// The subscribed extension saw each attempt: start, runtimeDone and report, same id.
	rec := f.recorded(t, "rec")
	var starts []time.Time
	for _, typ := range []string{"platform.start", "platform.runtimeDone", "platform.report"} {
		evs := rec.ofType(typ)
		if len(evs) != 3 {
			t.Fatalf("%d %s events, want one per attempt", len(evs), typ)
		}
		for _, ev := range evs {
			if ev.record()["requestId"] != id {
				t.Errorf("%s of request %v, want %s", typ, ev.record()["requestId"], id)
			}
			if typ == "platform.start" {
				at, _ := time.Parse(time.RFC3339Nano, ev.Time)
				starts = append(starts, at)
			}
		}
	}
	// The retries waited at least the scaled delays, 1 and 2 minutes at 1/1000.
	if d := starts[1].Sub(starts[0]); d < 60*time.Millisecond {
		t.Errorf("second attempt %v after the first, want at least 60 ms", d)
	}
	if d := starts[2].Sub(starts[1]); d < 120*time.Millisecond {
		t.Errorf("third attempt %v after the second, want at least 120 ms", d)
	}

	records := destinationLines(t, f, failureQueue)
	if len(records) != 1 {
		t.Fatalf("%d records on the failure queue, want 1", len(records))
	}
	r := records[0]
	if r["version"] != "1.0" || testbin.Field(r, "requestContext", "requestId") != id || testbin.Field(r, "requestContext", "condition") != "RetriesExhausted" ||
		testbin.Field(r, "requestContext", "approximateInvokeCount") != 3.0 ||
		testbin.Field(r, "requestContext", "functionArn") != "arn:aws:lambda:us-east-1:123456789012:function:hello-fn:$LATEST" ||
		testbin.Field(r, "requestPayload", "message") != "card stolen" ||
		testbin.Field(r, "responseContext", "statusCode") != 200.0 || testbin.Field(r, "responseContext", "executedVersion") != "$LATEST" ||
		testbin.Field(r, "responseContext", "functionError") != "Unhandled" || testbin.Field(r, "responsePayload", "errorType") != "PaymentDeclinedError" {
		t.Errorf("failure record: %v", r)
	}
	if _, err := time.Parse(destination.TimeFormat, r["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	letters := destinationLines(t, f, deadLetters)
	if len(letters) != 1 || letters[0]["body"] != event || testbin.Field(letters[0], "messageAttributes", "RequestID", "stringValue") != id ||
		!strings.Contains(testbin.Field(letters[0], "messageAttributes", "ErrorMessage", "stringValue").(string), "card stolen") {
		t.Errorf("dead letters: %v", letters)
	}
	if log := f.log.String(); !strings.Contains(log, "attempt 1 failed; retrying in 1m0s") || !strings.Contains(log, "attempt 2 failed; retrying in 2m0s") {
		t.Errorf("the retries are not in the log:\n%s", log)
	}
}

// An event older than MaximumEventAgeInSeconds is not attempted again: its record, with
// the one attempt made, goes to the on-failure destination, here an event bus.
func TestAsyncEventAgeExceeded(t *testing.T) {
	f := asyncFixture(t, `{"MaximumEventAgeInSeconds":60,"DestinationConfig":{"OnFailure":{"Destination":"`+bus+`"}}}`)
	e := f.start(t)
	id, err := e.InvokeAsync(Request{Payload: []byte(`{"action":"error"}`)})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	// The retry would come 60 ms (a minute) after the failure, when the event is older
	// than its 60 ms (a minute) of age.
	if recs := e.Records(); len(recs) != 1 || recs[0].RequestID != id {
		t.Fatalf("invocations %+v, want the first attempt only", recs)
	}
	evs := destinationLines(t, f, bus)
	if len(evs) != 1 || evs[0]["detail-type"] != "Lambda Function Invocation Result - Failure" ||
		testbin.Field(evs[0], "detail", "requestContext", "condition") != "EventAgeExceeded" ||
		testbin.Field(evs[0], "detail", "requestContext", "approximateInvokeCount") != 1.0 ||
		testbin.Field(evs[0], "detail", "requestContext", "requestId") != id {
		t.Errorf("event bus: %v", evs)
	}
}

// Events run in the order they were queued; a success's record is posted to the on-success
// function's URL.
func TestAsyncSuccessInOrder(t *testing.T) {
	posted := make(chan []byte, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posted <- b
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	f := asyncFixture(t, `{"DestinationConfig":{"OnSuccess":{"Destination":"`+onSuccess+`"}}}`)
	f.cfg.DestinationURLs = map[string]string{onSuccess: srv.URL}
	e := f.start(t)
	var ids []string
	for _, who := range []string{"one", "two", "three"} {
		id, err := e.InvokeAsync(Request{Payload: []byte(`{"action":"ok","message":"` + who + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	drain(t, e)
	var ran []string
	for _, r := range e.Records() {
		ran = append(ran, r.RequestID)
	}
	if !slices.Equal(ran, ids) {
		t.Errorf("ran %v, want the queue's order %v", ran, ids)
	}
	for i, who := range []string{"one", "two", "three"} {
		var r map[string]any
		select {
		case b := <-posted:
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
		case <-t.Context().Done():
			t.Fatalf("record %d never posted", i)
		}
		if testbin.Field(r, "requestContext", "condition") != "Success" || testbin.Field(r, "requestContext", "requestId") != ids[i] ||
			testbin.Field(r, "requestContext", "approximateInvokeCount") != 1.0 || testbin.Field(r, "requestPayload", "message") != who ||
			testbin.Field(r, "responsePayload", "ok") != true || testbin.Field(r, "responseContext", "functionError") != nil {
			t.Errorf("record %d: %v", i, r)
		}
	}
}

// The queue holds at most MaxQueuedEvents unfinished events, the one running included.
func TestAsyncQueueLimit(t *testing.T) {
	f := asyncFixture(t, "")
	f.cfg.MaxQueuedEvents = 1
	e := f.start(t)
	if _, err := e.InvokeAsync(Request{Payload: []byte(`{"action":"sleep","sleepMs":200}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.InvokeAsync(Request{Payload: []byte(`{}`)}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("second event: %v, want ErrQueueFull", err)
	}
	drain(t, e)
	if _, err := e.InvokeAsync(Request{Payload: []byte(`{}`)}); err != nil {
		t.Errorf("after the queue emptied: %v", err)
	}
	if _, err := e.InvokeAsync(Request{Payload: bytes.Repeat([]byte("x"), MaxAsyncPayloadBytes+1)}); err == nil || !strings.Contains(err.Error(), "more than the 262144 allowed") {
		t.Errorf("a payload over 256 KB: %v", err)
	}
}

// reports is an EventsOut that signals each platform.report.
type reports chan struct{}

func (r reports) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"type":"platform.report"`)) {
		r <- struct{}{}
	}
	return len(p), nil
}

// A retry still waiting at shutdown is reported, not waited for.
func TestAsyncShutdownReportsUnfinished(t *testing.T) {
	f := asyncFixture(t, `{"MaximumRetryAttempts":1}`)
	f.cfg.AsyncTimeScale = 1
	reported := make(reports, 1)
	f.cfg.EventsOut = reported
	e := f.start(t)
	id, err := e.InvokeAsync(Request{Payload: []byte(`{"action":"error"}`)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reported:
	case <-t.Context().Done():
		t.Fatal("the first attempt never ended")
	}
	// Its retry is due a minute later.
	rep := shutdown(t, e)
	if !slices.Equal(rep.Unfinished, []string{id}) || len(e.Records()) != 1 || e.QueuedEvents() != 0 {
		t.Errorf("unfinished %v after %d attempts, %d still queued; want [%s] after 1", rep.Unfinished, len(e.Records()), e.QueuedEvents(), id)
	}
	if !strings.Contains(f.log.String(), "asynchronous event "+id+" was still queued at shutdown after 1 attempts") {
		t.Errorf("the log does not tell the unfinished event:\n%s", f.log.String())
	}
	if _, err := e.InvokeAsync(Request{Payload: []byte(`{}`)}); !errors.Is(err, ErrClosed) {
		t.Errorf("after shutdown: %v, want ErrClosed", err)
	}
	var sum strings.Builder
	WriteSummary(&sum, e.Records(), rep, e.Failed())
	if !strings.Contains(sum.String(), "1 asynchronous invocations were still queued at shutdown: ["+id+"]") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// The queue gives out events by due time, then by arrival: a retry that comes due runs
// before newer events due later, and after those due earlier.
func TestAsyncQueueOrder(t *testing.T) {
	q := newAsyncQueue()
	t0 := time.Now()
	evs := map[string]*asyncEvent{}
	for i, name := range []string{"a", "b", "c"} {
		evs[name] = &asyncEvent{id: name, due: t0.Add(time.Duration(i) * time.Millisecond)}
		if err := q.push(evs[name], 10); err != nil {
			t.Fatal(err)
		}
	}
	// "a" failed and is retried, due between "b" and "c".
	a, _ := q.next(t0)
	a.due = t0.Add(1500 * time.Microsecond)
	q.push(a, 10)
	var order []string
	for {
		ev, wait := q.next(t0.Add(time.Second))
		if ev == nil {
			if wait >= 0 {
				t.Fatalf("next waits %v with events due", wait)
			}
			break
		}
		order = append(order, ev.id)
	}
	if !slices.Equal(order, []string{"b", "a", "c"}) {
		t.Errorf("order %v, want [b a c]", order)
	}
	if ev, wait := q.next(t0); ev != nil || wait != -1 {
		t.Errorf("empty queue: %v %v", ev, wait)
	}
	q.push(&asyncEvent{id: "d", due: t0.Add(time.Minute)}, 10)
	if ev, wait := q.next(t0); ev != nil || wait != time.Minute {
		t.Errorf("an event due in a minute: %v, wait %v", ev, wait)
	}
	if q.heldEvents() != 4 {
		t.Errorf("held %d, want 4 (none finished)", q.heldEvents())
	}
	if got := q.drain(); len(got) != 1 || q.push(&asyncEvent{id: "e"}, 10) != ErrClosed {
		t.Errorf("drain returned %d events; a push after it must fail", len(got))
	}
}

// The front door takes the config API and Event invocations as Lambda's endpoint does.
func TestAsyncFrontDoor(t *testing.T) {
	f := asyncFixture(t, "")
	f.cfg.MaxQueuedEvents = 1
	e := f.start(t)
	h := e.InvokeHandler()
	do := func(method, path, invocationType, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if invocationType != "" {
			req.Header.Set("X-Amz-Invocation-Type", invocationType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const configPath = "/2019-09-25/functions/hello-fn/event-invoke-config"
	if w := do("PUT", configPath, "", `{"MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"`+failureQueue+`"}}}`); w.Code != 200 {
		t.Fatalf("PUT config: %d %s", w.Code, w.Body)
	}
	w := do("POST", "/2015-03-31/functions/hello-fn/invocations", "Event", `{"action":"error"}`)
	id := w.Header().Get("X-Amzn-Requestid")
	if w.Code != http.StatusAccepted || id == "" || w.Body.Len() != 0 {
		t.Fatalf("Event invoke: %d %v %q", w.Code, w.Header(), w.Body)
	}
	drain(t, e)
	if recs := destinationLines(t, f, failureQueue); len(recs) != 1 || testbin.Field(recs[0], "requestContext", "requestId") != id || testbin.Field(recs[0], "requestContext", "approximateInvokeCount") != 1.0 {
		t.Errorf("with no retries configured: %v", recs)
	}
	for _, tt := range []struct {
		name, path, body string
		status           int
		errType          string
	}{
		{"over 256 KB", InvokePath, strings.Repeat("x", MaxAsyncPayloadBytes+1), http.StatusRequestEntityTooLarge, "RequestTooLargeException"},
		{"a qualifier that does not exist", InvokePath + "?Qualifier=live", `{}`, http.StatusNotFound, "ResourceNotFoundException"},
		{"accepted", InvokePath, `{"action":"sleep","sleepMs":200}`, http.StatusAccepted, ""},
		{"over the queue's limit", InvokePath, `{}`, http.StatusTooManyRequests, "TooManyRequestsException"},
	} {
		w := do("POST", tt.path, "Event", tt.body)
		if w.Code != tt.status || w.Header().Get("X-Amzn-ErrorType") != tt.errType {
			t.Errorf("%s: %d %q %s", tt.name, w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body)
		}
	}
}
