package delivery

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// wait bounds every wait for a delivery. Loopback deliveries take milliseconds, so reaching
// it means the delivery is not coming.
const wait = 10 * time.Second

// epoch is the time of the test events: fixed, so that deliveries compare whole.
var epoch = time.Date(2022, 10, 12, 0, 0, 15, 64_000_000, time.UTC)

// wireEvent is one delivered event as a subscriber decodes it.
type wireEvent struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

func (e wireEvent) String() string { return fmt.Sprintf("{%s %s %s}", e.Time, e.Type, e.Record) }

// decodeEvent decodes one delivered event, which must have exactly the envelope's fields.
func decodeEvent(b []byte) (wireEvent, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return wireEvent{}, err
	}
	_, hasTime := m["time"]
	_, hasType := m["type"]
	_, hasRecord := m["record"]
	if len(m) != 3 || !hasTime || !hasType || !hasRecord {
		return wireEvent{}, fmt.Errorf("event %s: want exactly time, type and record", b)
	}
	var ev wireEvent
	err := json.Unmarshal(b, &ev)
	return ev, err
}

// post is one HTTP delivery a receiver acknowledged.
type post struct {
	method, path, contentType string
	events                    []wireEvent
	// err is what was wrong with the body, which must be a JSON array of events.
	err error
}

// receiver is a subscriber's HTTP listener on loopback.
type receiver struct {
	srv   *httptest.Server
	posts chan post
}

// newReceiver starts a listener that answers each request with answer's status (200 when
// answer is nil; answer may block) and hands each acknowledged POST to posts. Start it
// before the hub: cleanups run last first, so the hub closes first and ends any request
// the listener is still holding.
func newReceiver(t *testing.T, answer func(*http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{posts: make(chan post, 1024)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		status := http.StatusOK
		if answer != nil {
			status = answer(r)
		}
		if err != nil || status/100 != 2 {
			w.WriteHeader(status)
			return
		}
		p := post{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type")}
		var elems []json.RawMessage
		if p.err = json.Unmarshal(b, &elems); p.err == nil {
			for _, e := range elems {
				ev, err := decodeEvent(e)
				if err != nil {
					p.err = err
					break
				}
				p.events = append(p.events, ev)
			}
		}
		select {
		case rc.posts <- p:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// uri is the destination a subscriber gives for this listener: sandbox.localdomain, which
// the hub dials as loopback, on the listener's port.
func (rc *receiver) uri(path string) string {
	return "http://sandbox.localdomain:" + portOf(rc.srv.Listener.Addr()) + path
}

func portOf(a net.Addr) string { return strconv.Itoa(a.(*net.TCPAddr).Port) }

// next returns the next acknowledged POST, failing the test if none comes or its body is
// not a JSON array of events.
func (rc *receiver) next(t *testing.T) post {
	t.Helper()
	select {
	case p := <-rc.posts:
		if p.err != nil {
			t.Fatalf("POST %s: %v", p.path, p.err)
		}
		return p
	case <-time.After(wait):
		t.Fatalf("no delivery within %v", wait)
		return post{}
	}
}

// events returns the events of the next POSTs, in order, until n have arrived.
func (rc *receiver) events(t *testing.T, n int) []wireEvent {
	t.Helper()
	var evs []wireEvent
	for len(evs) < n {
		evs = append(evs, rc.next(t).events...)
	}
	return evs
}

// until returns the events of the next POSTs, in order, up to the POST holding the event
// last reports.
func (rc *receiver) until(t *testing.T, last func(wireEvent) bool) []wireEvent {
	t.Helper()
	var evs []wireEvent
	for {
		p := rc.next(t)
		evs = append(evs, p.events...)
		if slices.ContainsFunc(p.events, last) {
			return evs
		}
	}
}

// newHub returns a hub that closes when the test ends.
func newHub(t *testing.T, opts Options) *Hub {
	t.Helper()
	h := New(opts)
	t.Cleanup(h.Close)
	return h
}

// httpRequest is a Telemetry API (schema 2022-12-13) subscription of types to uri.
func httpRequest(uri string, types ...string) Request {
	return Request{SchemaVersion: "2022-12-13", Destination: &Destination{Protocol: "HTTP", URI: uri}, Types: types}
}

// subscribe subscribes extension name through api and fails the test unless it is accepted.
func subscribe(t *testing.T, h *Hub, api API, name string, req Request) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if status, answer, _ := h.Subscribe(api, name, b); status != http.StatusOK {
		t.Fatalf("subscribing %s: %d %s", name, status, answer)
	}
}

// logLine is the i-th function log line, "line i".
func logLine(i int) Event {
	return Event{Time: epoch.Add(time.Duration(i) * time.Millisecond), Type: TypeFunction, Record: Line{Text: fmt.Sprintf("line %d", i)}}
}

// lineTexts returns "line i" for i in [from, to).
func lineTexts(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("line %d", i))
	}
	return s
}

// texts returns the string records of the events of type typ, in order.
func texts(t *testing.T, evs []wireEvent, typ string) []string {
	t.Helper()
	var s []string
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var text string
		if err := json.Unmarshal(ev.Record, &text); err != nil {
			t.Fatalf("%s record %s: %v", typ, ev.Record, err)
		}
		s = append(s, text)
	}
	return s
}

// requestIDs returns the requestId of every event of type typ, in order.
func requestIDs(t *testing.T, evs []wireEvent, typ string) []string {
	t.Helper()
	var ids []string
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var r struct{ RequestID string }
		if err := json.Unmarshal(ev.Record, &r); err != nil {
			t.Fatalf("%s record %s: %v", typ, ev.Record, err)
		}
		ids = append(ids, r.RequestID)
	}
	return ids
}

// report is a platform.report for request id, which tests publish last and wait for.
func report(id string) Event {
	return Event{Time: epoch, Type: TypeReport, Record: Report{RequestID: id, Status: "success"}}
}

// isReport reports whether an event is the platform.report of request id.
func isReport(id string) func(wireEvent) bool {
	return func(ev wireEvent) bool {
		return ev.Type == TypeReport && strings.Contains(string(ev.Record), `"requestId":"`+id+`"`)
	}
}

func TestSubscribeAnswers(t *testing.T) {
	valid := body(fields{"types": []string{"platform", "function"}})
	invalid := guideErrorExample
	type call struct {
		api  API
		name string
		body string
	}
	tests := []struct {
		name string
		// calls are made in order; seal closes the window before the last one.
		calls []call
		seal  bool
		// status and answer are the last call's; subs is how many subscribers remain.
		status int
		answer string
		subs   int
	}{
		{name: "telemetry", calls: []call{{Telemetry, "ext", valid}}, status: 200, answer: `"OK"`, subs: 1},
		{name: "logs", calls: []call{{Logs, "ext", body(fields{"schemaVersion": nil, "types": []string{"platform", "function"}})}}, status: 200, answer: `"OK"`, subs: 1},
		{name: "telemetry invalid", calls: []call{{Telemetry, "ext", invalid}}, status: 400,
			answer: `{"errorType":"ValidationError","errorMessage":"URI port is not provided; types should not be empty"}`},
		{name: "logs invalid", calls: []call{{Logs, "ext", strings.Replace(invalid, "2022-12-13", "2020-08-15", 1)}}, status: 400,
			answer: `{"errorType":"Logs.ValidationError","errorMessage":"URI port is not provided; types should not be empty"}`},
		{name: "logs after telemetry", calls: []call{{Telemetry, "ext", valid}, {Logs, "ext", body(fields{"schemaVersion": nil})}}, status: 400,
			answer: `{"errorType":"Logs.ValidationError","errorMessage":"extension ext is already subscribed to the Telemetry API; the Telemetry and Logs APIs exclude each other"}`, subs: 1},
		{name: "telemetry after logs", calls: []call{{Logs, "ext", body(fields{"schemaVersion": nil})}, {Telemetry, "ext", valid}}, status: 400,
			answer: `{"errorType":"ValidationError","errorMessage":"extension ext is already subscribed to the Logs API; the Telemetry and Logs APIs exclude each other"}`, subs: 1},
		{name: "both APIs by two extensions", calls: []call{{Telemetry, "a", valid}, {Logs, "b", body(fields{"schemaVersion": nil})}}, status: 200, answer: `"OK"`, subs: 2},
		{name: "telemetry again", calls: []call{{Telemetry, "ext", valid}, {Telemetry, "ext", valid}}, status: 200, answer: `"OK"`, subs: 1},
		{name: "logs again", calls: []call{{Logs, "ext", body(fields{"schemaVersion": nil})}, {Logs, "ext", body(fields{"schemaVersion": nil})}}, status: 200, answer: `"OK"`, subs: 1},
		{name: "telemetry sealed", calls: []call{{Telemetry, "ext", valid}}, seal: true, status: 403,
			answer: `{"errorType":"Telemetry.SubscriptionClosed","errorMessage":"Telemetry API subscriptions are accepted only during the init phase"}`},
		{name: "logs sealed", calls: []call{{Logs, "ext", body(fields{"schemaVersion": nil})}}, seal: true, status: 403,
			answer: `{"errorType":"Logs.SubscriptionClosed","errorMessage":"Logs API subscriptions are accepted only during the init phase"}`},
		{name: "telemetry again sealed", calls: []call{{Telemetry, "ext", valid}, {Telemetry, "ext", valid}}, seal: true, status: 403,
			answer: `{"errorType":"Telemetry.SubscriptionClosed","errorMessage":"Telemetry API subscriptions are accepted only during the init phase"}`, subs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, Options{})
			var (
				status int
				answer []byte
				ev     *Event
			)
			for i, c := range tt.calls {
				if tt.seal && i == len(tt.calls)-1 {
					h.Seal()
				}
				status, answer, ev = h.Subscribe(c.api, c.name, []byte(c.body))
			}
			if status != tt.status || string(answer) != tt.answer {
				t.Errorf("answer %d %s, want %d %s", status, answer, tt.status, tt.answer)
			}
			if n := len(h.Stats()); n != tt.subs {
				t.Errorf("%d subscribers, want %d", n, tt.subs)
			}
			if status != http.StatusOK {
				if ev != nil {
					t.Errorf("event %+v for a refused subscription", *ev)
				}
				return
			}
			last := tt.calls[len(tt.calls)-1]
			typ := map[API]string{Telemetry: TypeTelemetrySubscription, Logs: TypeLogsSubscription}[last.api]
			var want Subscription
			if err := json.Unmarshal([]byte(last.body), &want); err != nil {
				t.Fatal(err)
			}
			want.Name, want.State = last.name, "Subscribed"
			if ev == nil || ev.Type != typ || !reflect.DeepEqual(ev.Record, want) {
				t.Errorf("event %+v, want a %s with %+v", ev, typ, want)
			}
		})
	}
}

// A repeated subscription replaces the settings and keeps what is queued: the queued event
// goes, once, to the new destination.
func TestResubscribeKeepsQueue(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	req := httpRequest(rc.uri("/first"), "function")
	req.Buffering = &Buffering{TimeoutMs: new(MaxTimeoutMs)}
	subscribe(t, h, Telemetry, "ext", req)
	h.Publish(logLine(0))
	req.Destination.URI = rc.uri("/second")
	subscribe(t, h, Telemetry, "ext", req)
	h.Publish(logLine(1))
	h.Flush()

	var got []string
	for len(got) < 2 {
		p := rc.next(t)
		if p.path != "/second" {
			t.Errorf("delivered to %s after re-subscribing to /second", p.path)
		}
		got = append(got, texts(t, p.events, TypeFunction)...)
	}
	if want := lineTexts(0, 2); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if n := len(h.Stats()); n != 1 {
		t.Errorf("%d subscribers, want 1", n)
	}
}

// A subscriber receives the environment's stream from its start: what was published before
// it subscribed comes first, in order.
func TestBacklogReplay(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	initStart := Event{Time: epoch, Type: TypeInitStart, Record: InitStart{InitializationType: "on-demand", Phase: "init", FunctionName: "f", FunctionVersion: "$LATEST"}}
	h.Publish(initStart)
	h.Publish(Event{Time: epoch, Type: TypeExtensionLog, Record: Line{Text: "extension up"}})
	h.Publish(logLine(0))
	h.Publish(logLine(1))
	subscribe(t, h, Telemetry, "ext", httpRequest(rc.uri("/"), "platform", "function", "extension"))
	h.Publish(logLine(2))
	h.Seal()
	h.Publish(logLine(3))
	h.Flush()

	evs := rc.events(t, 6)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Type+" "+string(ev.Record))
	}
	want := []string{
		TypeInitStart + ` {"initializationType":"on-demand","phase":"init","functionName":"f","functionVersion":"$LATEST"}`,
		`extension "extension up"`,
		`function "line 0"`, `function "line 1"`, `function "line 2"`, `function "line 3"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("delivered\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A POST carries at most maxItems events; together they are the stream, in order.
func TestBatchesHoldAtMostMaxItems(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	req := httpRequest(rc.uri("/"), "function")
	req.Buffering = &Buffering{MaxItems: new(1000), TimeoutMs: new(MinTimeoutMs)}
	subscribe(t, h, Telemetry, "ext", req)
	const n = 2500
	for i := range n {
		h.Publish(logLine(i))
	}

	var got []string
	for len(got) < n {
		p := rc.next(t)
		if len(p.events) > 1000 {
			t.Errorf("a POST of %d events with maxItems 1000", len(p.events))
		}
		got = append(got, texts(t, p.events, TypeFunction)...)
	}
	if !slices.Equal(got, lineTexts(0, n)) {
		t.Errorf("delivered %d lines out of order or changed", len(got))
	}
}

// Events that reach no limit go once timeoutMs has passed, without a flush or more events.
func TestTimeoutDelivers(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	req := httpRequest(rc.uri("/"), "function")
	req.Buffering = &Buffering{TimeoutMs: new(50)}
	subscribe(t, h, Telemetry, "ext", req)
	for i := range 3 {
		h.Publish(logLine(i))
	}
	if got := texts(t, rc.events(t, 3), TypeFunction); !slices.Equal(got, lineTexts(0, 3)) {
		t.Errorf("delivered %q", got)
	}
}

// Flush delivers at once what would otherwise wait timeoutMs (30 s, beyond the test's wait).
func TestFlushDeliversAtOnce(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	req := httpRequest(rc.uri("/"), "function")
	req.Buffering = &Buffering{TimeoutMs: new(MaxTimeoutMs)}
	subscribe(t, h, Telemetry, "ext", req)
	for i := range 3 {
		h.Publish(logLine(i))
	}
	h.Flush()
	if got := texts(t, rc.events(t, 3), TypeFunction); !slices.Equal(got, lineTexts(0, 3)) {
		t.Errorf("delivered %q", got)
	}
}

// Each delivery is a POST of a JSON array of {time, type, record} to the URI's own path.
func TestPostShape(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	req := httpRequest(rc.uri("/lambda_logs"), "platform", "function")
	subscribe(t, h, Telemetry, "ext", req)
	// The platform's times are UTC with milliseconds, whatever the emulator's zone.
	at := time.Date(2022, 10, 12, 2, 0, 15, 64_999_999, time.FixedZone("CEST", 2*3600))
	h.Publish(Event{Time: at, Type: TypeStart, Record: Start{RequestID: "r1", Version: "$LATEST"}})
	h.Publish(Event{Time: at, Type: TypeFunction, Record: Line{Text: "hello"}})
	h.Flush()

	var evs []wireEvent
	for len(evs) < 2 {
		p := rc.next(t)
		if p.method != http.MethodPost || p.path != "/lambda_logs" || p.contentType != "application/json" {
			t.Errorf("%s %s with Content-Type %q, want POST /lambda_logs with application/json", p.method, p.path, p.contentType)
		}
		evs = append(evs, p.events...)
	}
	want := []wireEvent{
		{Time: "2022-10-12T00:00:15.064Z", Type: TypeStart, Record: json.RawMessage(`{"requestId":"r1","version":"$LATEST"}`)},
		{Time: "2022-10-12T00:00:15.064Z", Type: TypeFunction, Record: json.RawMessage(`"hello"`)},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("delivered %s, want %s", evs, want)
	}
}

// A failed POST is retried until acknowledged: nothing is lost.
func TestRetriesAfterFailure(t *testing.T) {
	var requests atomic.Int32
	rc := newReceiver(t, func(*http.Request) int {
		if requests.Add(1) <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h := newHub(t, Options{})
	subscribe(t, h, Telemetry, "ext", httpRequest(rc.uri("/"), "function"))
	const n = 5
	for i := range n {
		h.Publish(logLine(i))
	}
	h.Flush()

	// Retries may deliver an event twice; each must be there.
	got := texts(t, rc.events(t, n), TypeFunction)
	for _, want := range lineTexts(0, n) {
		if !slices.Contains(got, want) {
			t.Errorf("%q never delivered; got %q", want, got)
		}
	}
	if f := h.Stats()["ext"].FailedAttempts; f != 2 {
		t.Errorf("FailedAttempts %d, want 2", f)
	}
}

// A paused hub delivers nothing until resumed.
func TestPauseHoldsDeliveries(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	subscribe(t, h, Telemetry, "ext", httpRequest(rc.uri("/"), "function"))
	h.Pause()
	h.Publish(logLine(0))
	h.Flush()
	// An unpaused hub delivers on loopback well within this window; the wait only shows
	// that nothing came, it measures nothing.
	select {
	case p := <-rc.posts:
		t.Fatalf("delivered while paused: %s", p.events)
	case <-time.After(200 * time.Millisecond):
	}
	h.Resume()
	if got := texts(t, rc.events(t, 1), TypeFunction); !slices.Equal(got, lineTexts(0, 1)) {
		t.Errorf("delivered %q after Resume", got)
	}
}

// A subscriber that stops acknowledging holds at most twice maxBytes of log lines: the rest
// are dropped, counted and reported in platform.logsDropped; platform events all arrive.
func TestSlowSubscriberDropsLogLines(t *testing.T) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request) int {
		select {
		case held <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	var (
		mu        sync.Mutex
		generated []Event
	)
	h := newHub(t, Options{OnGenerated: func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		generated = append(generated, ev)
	}})
	req := httpRequest(rc.uri("/"), "platform", "function")
	req.Buffering = &Buffering{MaxBytes: new(MinMaxBytes)}
	subscribe(t, h, Telemetry, "ext", req)

	// Hold the first delivery, so that everything after it queues.
	h.Publish(logLine(0))
	h.Flush()
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatal("no delivery to hold")
	}
	pad := strings.Repeat("x", 1000)
	const lines = 2000 // about 2 MB of events, far beyond 2×maxBytes
	var starts []string
	for i := 1; i <= lines; i++ {
		h.Publish(Event{Time: epoch, Type: TypeFunction, Record: Line{Text: fmt.Sprintf("line %d %s", i, pad)}})
		if i%100 == 0 {
			id := strconv.Itoa(i)
			starts = append(starts, id)
			h.Publish(Event{Time: epoch, Type: TypeStart, Record: Start{RequestID: id}})
		}
	}
	h.Publish(report("last"))
	close(release)
	h.Flush()

	evs := rc.until(t, isReport("last"))
	st := h.Stats()["ext"]
	fn := texts(t, evs, TypeFunction)
	if st.DroppedRecords == 0 || int64(len(fn))+st.DroppedRecords != lines+1 {
		t.Errorf("%d lines delivered and %d dropped, want %d in all with some dropped", len(fn), st.DroppedRecords, lines+1)
	}
	last := -1
	for _, text := range fn {
		i, _ := strconv.Atoi(strings.Fields(text)[1])
		if i <= last {
			t.Fatalf("line %d delivered after line %d", i, last)
		}
		last = i
	}
	if got := requestIDs(t, evs, TypeStart); !slices.Equal(got, starts) {
		t.Errorf("platform.start of requests %q delivered, want %q: platform events are never dropped", got, starts)
	}

	var reported []LogsDropped
	for _, ev := range evs {
		if ev.Type == TypeLogsDropped {
			var r LogsDropped
			if err := json.Unmarshal(ev.Record, &r); err != nil {
				t.Fatal(err)
			}
			reported = append(reported, r)
		}
	}
	if len(reported) != 1 || reported[0].DroppedRecords != st.DroppedRecords || reported[0].DroppedBytes != st.DroppedBytes {
		t.Errorf("platform.logsDropped delivered %+v, want one with %d records and %d bytes", reported, st.DroppedRecords, st.DroppedBytes)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(generated) != 1 || generated[0].Type != TypeLogsDropped || generated[0].Record.(LogsDropped).DroppedRecords != st.DroppedRecords {
		t.Errorf("OnGenerated received %+v, want one platform.logsDropped with %d records", generated, st.DroppedRecords)
	}
}

// Lines the hub could not keep for subscribers yet to come are reported to each of them
// that takes those lines, and only to those.
func TestBacklogOverflowReportedToItsStream(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	line := Event{Time: epoch, Type: TypeFunction, Record: Line{Text: strings.Repeat("x", 1000)}}
	lines := backlogBytes/len(line.Encode()) + 10
	for range lines {
		h.Publish(line)
	}
	subscribe(t, h, Telemetry, "function", httpRequest(rc.uri("/function"), "platform", "function"))
	subscribe(t, h, Telemetry, "platform", httpRequest(rc.uri("/platform"), "platform"))
	h.Seal()
	h.Publish(report("last"))
	h.Flush()

	byPath := map[string][]wireEvent{}
	for !slices.ContainsFunc(byPath["/function"], isReport("last")) || !slices.ContainsFunc(byPath["/platform"], isReport("last")) {
		p := rc.next(t)
		byPath[p.path] = append(byPath[p.path], p.events...)
	}
	stats := h.Stats()
	dropped := func(evs []wireEvent) (n int64) {
		for _, ev := range evs {
			if ev.Type == TypeLogsDropped {
				var r LogsDropped
				if err := json.Unmarshal(ev.Record, &r); err != nil {
					t.Fatal(err)
				}
				n += r.DroppedRecords
			}
		}
		return n
	}
	fn := stats["function"]
	if got := int64(len(texts(t, byPath["/function"], TypeFunction))); got+fn.DroppedRecords != int64(lines) {
		t.Errorf("function subscriber: %d lines delivered and %d dropped, want %d in all", got, fn.DroppedRecords, lines)
	}
	if got := dropped(byPath["/function"]); got != fn.DroppedRecords || got == 0 {
		t.Errorf("function subscriber: platform.logsDropped reported %d records, its stats %d", got, fn.DroppedRecords)
	}
	if got, st := dropped(byPath["/platform"]), stats["platform"]; got != 0 || st.DroppedRecords != 0 {
		t.Errorf("platform-only subscriber: %d dropped records reported, %d in its stats; it takes no log lines", got, st.DroppedRecords)
	}
}

// A JSON log line travels as an object only to 2022-12-13 Telemetry API subscribers; older
// schemas and the Logs API receive its text.
func TestSchemaViews(t *testing.T) {
	rc := newReceiver(t, nil)
	h := newHub(t, Options{})
	subscribe(t, h, Telemetry, "new", httpRequest(rc.uri("/new"), "function"))
	old := httpRequest(rc.uri("/old"), "function")
	old.SchemaVersion = "2022-07-01"
	subscribe(t, h, Telemetry, "old", old)
	logs := httpRequest(rc.uri("/logs"), "function")
	logs.SchemaVersion = ""
	subscribe(t, h, Logs, "logs", logs)
	const object = `{"level":"INFO","message":"hi"}`
	h.Publish(Event{Time: epoch, Type: TypeFunction, Record: Line{Text: object, Object: json.RawMessage(object)}})
	h.Publish(Event{Time: epoch, Type: TypeFunction, Record: Line{Text: "plain"}})
	h.Flush()

	byPath := map[string][]string{}
	for n := 0; n < 6; {
		p := rc.next(t)
		for _, ev := range p.events {
			byPath[p.path] = append(byPath[p.path], string(ev.Record))
			n++
		}
	}
	asText := strconv.Quote(object)
	want := map[string][]string{
		"/new":  {object, `"plain"`},
		"/old":  {asText, `"plain"`},
		"/logs": {asText, `"plain"`},
	}
	if !reflect.DeepEqual(byPath, want) {
		t.Errorf("records by subscriber %q, want %q", byPath, want)
	}
}

// tcpReceiver accepts the hub's TCP connections on loopback and hands each line it reads to
// lines. Start it before the hub, whose Close ends the connections its readers wait on.
func tcpReceiver(t *testing.T) (port int, lines <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1024)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				sc.Buffer(nil, 4*MaxMaxBytes)
				for sc.Scan() {
					select {
					case out <- sc.Text():
					case <-done:
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port, out
}

// Over TCP every event is one line of NDJSON, whichever form the destination takes.
func TestTCPDelivery(t *testing.T) {
	tests := []struct {
		name string
		// uri is the destination URI with %d for the port; empty, the destination gives
		// the port alone.
		uri string
	}{
		{"host:port", "sandbox.localdomain:%d"},
		{"tcp://host:port", "tcp://sandbox.localdomain:%d"},
		{"port", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, lines := tcpReceiver(t)
			d := &Destination{Protocol: "TCP", Port: &port}
			if tt.uri != "" {
				d = &Destination{Protocol: "TCP", URI: fmt.Sprintf(tt.uri, port)}
			}
			h := newHub(t, Options{})
			subscribe(t, h, Telemetry, "ext", Request{SchemaVersion: "2022-12-13", Destination: d, Types: []string{"platform", "function"}})
			h.Publish(Event{Time: epoch, Type: TypeStart, Record: Start{RequestID: "r1"}})
			h.Publish(logLine(0))
			h.Publish(logLine(1))
			h.Flush()
			want := []string{
				`{"time":"2022-10-12T00:00:15.064Z","type":"platform.start","record":{"requestId":"r1"}}`,
				`{"time":"2022-10-12T00:00:15.064Z","type":"function","record":"line 0"}`,
				`{"time":"2022-10-12T00:00:15.065Z","type":"function","record":"line 1"}`,
			}
			for _, w := range want {
				select {
				case line := <-lines:
					if _, err := decodeEvent([]byte(line)); err != nil || line != w {
						t.Errorf("line %s, want %s (%v)", line, w, err)
					}
				case <-time.After(wait):
					t.Fatalf("no line within %v", wait)
				}
			}
		})
	}
}

// Close ends a delivery stuck on a subscriber that neither answers nor reads, and leaves no
// goroutine behind.
func TestCloseEndsStuckDelivery(t *testing.T) {
	t.Run("HTTP", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		held := make(chan struct{}, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			// The server notices the client hanging up only once the body is read.
			io.Copy(io.Discard, r.Body)
			select {
			case held <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
			case <-time.After(wait):
			}
		}))
		t.Cleanup(srv.Close)
		h := newHub(t, Options{})
		subscribe(t, h, Telemetry, "ext", httpRequest("http://sandbox.localdomain:"+portOf(srv.Listener.Addr())+"/", "function"))
		h.Publish(logLine(0))
		h.Flush()
		select {
		case <-held:
		case <-time.After(wait):
			t.Fatal("no delivery to hold")
		}
		closeWithin(t, h)
		srv.Close()
		goleak.VerifyNone(t, before)
	})

	t.Run("TCP", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		accepted := make(chan net.Conn, 1)
		go func() {
			if conn, err := ln.Accept(); err == nil {
				accepted <- conn
			}
			close(accepted)
		}()
		h := newHub(t, Options{})
		subscribe(t, h, Telemetry, "ext", Request{SchemaVersion: "2022-12-13", Destination: &Destination{Protocol: "TCP", URI: "sandbox.localdomain:" + portOf(ln.Addr())}, Types: []string{"platform"}})
		// Sealed, the hub keeps no copy of what follows for subscribers to come.
		h.Seal()
		// Platform events are never dropped: 128 of 256 KiB, far more than loopback buffers
		// hold for a reader that never reads, leave the hub stuck writing.
		const n = 128
		big := Event{Time: epoch, Type: TypeStart, Record: Start{RequestID: strings.Repeat("x", MinMaxBytes)}}
		for range n {
			h.Publish(big)
		}
		var conn net.Conn
		select {
		case conn = <-accepted:
		case <-time.After(wait):
		}
		if conn == nil {
			t.Fatal("the hub did not connect")
		}
		t.Cleanup(func() { conn.Close() })
		closeWithin(t, h)
		if d := h.Stats()["ext"].Delivered; d >= n {
			t.Errorf("all %d events written to a reader that never reads", d)
		}
		conn.Close()
		ln.Close()
		goleak.VerifyNone(t, before)
	})
}

// closeWithin closes h and fails the test if Close does not return within the wait.
func closeWithin(t *testing.T, h *Hub) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatalf("Close still blocked after %v", wait)
	}
}
