package telemetry

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// readBatch reads a test input; files under testdata/events hold one event each, as the
// spec prints them, and are wrapped into a batch of one.
func readBatch(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(path)) == "events" {
		return append(append([]byte("["), b...), ']')
	}
	return b
}

func inputs(t testing.TB) []string {
	t.Helper()
	var all []string
	for _, dir := range []string{"events", "batches"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	if len(all) == 0 {
		t.Fatal("no test inputs under testdata")
	}
	return all
}

type goldenEvent struct {
	Time       time.Time `json:"time"`
	Type       EventType `json:"type"`
	RecordType string    `json:"recordType"`
	Record     Record    `json:"record"`
	Size       int       `json:"size"`
}

// TestDecodeGolden decodes every example payload of the Telemetry API reference and the
// batches beside them, and compares the typed result with its golden file.
func TestDecodeGolden(t *testing.T) {
	for _, path := range inputs(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			events, err := DecodeBatch(nil, readBatch(t, path))
			doc := struct {
				Events []goldenEvent `json:"events"`
				Error  string        `json:"error,omitempty"`
			}{Events: []goldenEvent{}}
			if err != nil {
				doc.Error = err.Error()
			}
			for _, e := range events {
				doc.Events = append(doc.Events, goldenEvent{e.Time, e.Type, fmt.Sprintf("%T", e.Record), e.Record, e.Size})
			}
			got, merr := json.MarshalIndent(doc, "", "  ")
			if merr != nil {
				t.Fatal(merr)
			}
			golden := strings.TrimSuffix(path, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test ./telemetry -run TestDecodeGolden -update)", rerr)
			}
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("decoded %s differs from %s:\n%s", path, golden, got)
			}
		})
	}
}

// TestDecodeEveryTypeIsTyped checks that each of the spec's examples decodes to its own
// record type, never to *Raw, so all 14 event types are covered.
func TestDecodeEveryTypeIsTyped(t *testing.T) {
	seen := map[EventType]bool{}
	paths, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, path := range paths {
		events, err := DecodeBatch(nil, readBatch(t, path))
		if err != nil || len(events) != 1 {
			t.Fatalf("%s: %d events, error %v", path, len(events), err)
		}
		if raw, ok := events[0].Record.(*Raw); ok {
			t.Errorf("%s: record is untyped: %s", path, raw.Err)
		}
		if events[0].Time.IsZero() {
			t.Errorf("%s: time was not read", path)
		}
		seen[events[0].Type] = true
	}
	for _, typ := range []EventType{TypeInitStart, TypeInitRuntimeDone, TypeInitReport, TypeStart, TypeRuntimeDone,
		TypeReport, TypeRestoreStart, TypeRestoreRuntimeDone, TypeRestoreReport, TypeExtension,
		TypeTelemetrySubscription, TypeLogsDropped, TypeFunction, TypeExtensionLog} {
		if !seen[typ] {
			t.Errorf("no example of %s under testdata/events", typ)
		}
	}
}

func decodeOne(t *testing.T, path string, i int) Event {
	t.Helper()
	events, _ := DecodeBatch(nil, readBatch(t, path))
	if i >= len(events) {
		t.Fatalf("%s: want event %d, have %d", path, i, len(events))
	}
	return events[i]
}

func TestDecodeFields(t *testing.T) {
	ms := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		path  string
		index int
		check func(t *testing.T, e Event)
	}{
		{"start tracing", "testdata/events/start.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*Start)
			if r.RequestID != "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa" || r.Version != "$LATEST" || r.Tracing == nil ||
				r.Tracing.SpanID != "54565fb41ac79632" || !strings.HasPrefix(r.Tracing.Value, "Root=1-62e900b2-") {
				t.Errorf("got %+v", r)
			}
			if !e.Time.Equal(ms("2022-10-12T00:00:15.064Z")) {
				t.Errorf("time %v", e.Time)
			}
		}},
		{"runtimeDone span with a colon before the milliseconds", "testdata/events/runtimeDone.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*RuntimeDone)
			if r.Status != StatusSuccess || r.Metrics == nil || r.Metrics.DurationMs != 140 || r.Metrics.ProducedBytes != 16 {
				t.Errorf("got %+v", r)
			}
			if len(r.Spans) != 1 || !r.Spans[0].Start.Equal(ms("2022-08-02T12:01:23.521Z")) || r.Spans[0].DurationMs != 80 {
				t.Errorf("spans %+v", r.Spans)
			}
		}},
		{"report metrics", "testdata/events/report.json", 0, func(t *testing.T, e Event) {
			m := e.Record.(*Report).Metrics
			if m.BilledDurationMs != 694 || m.DurationMs != 693.92 || m.InitDurationMs != 397.68 || m.MaxMemoryUsedMB != 84 || m.MemorySizeMB != 128 {
				t.Errorf("got %+v", m)
			}
		}},
		{"initStart", "testdata/events/initStart.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*InitStart)
			if r.InitializationType != InitOnDemand || r.Phase != PhaseInit || r.InstanceMaxMemory != 256 || r.FunctionName != "myFunction" {
				t.Errorf("got %+v", r)
			}
		}},
		{"function JSON log", "testdata/events/function-json.json", 0, func(t *testing.T, e Event) {
			l := e.Record.(*Log)
			if !l.IsJSON() || l.Level != "INFO" || l.RequestID != "79b4f56e-95b1-4643-9700-2807f4e68189" ||
				l.Message != "Hello world, I am a function!" || !l.Timestamp.Equal(ms("2022-10-12T00:03:50Z")) {
				t.Errorf("got %+v", l)
			}
		}},
		{"function text log", "testdata/events/function-text.json", 0, func(t *testing.T, e Event) {
			l := e.Record.(*Log)
			if l.IsJSON() || l.Text != "[INFO] Hello world, I am a function!" {
				t.Errorf("got %+v", l)
			}
		}},
		{"logsDropped", "testdata/events/logsDropped.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*LogsDropped)
			if r.DroppedBytes != 12345 || r.DroppedRecords != 123 || r.Reason == "" {
				t.Errorf("got %+v", r)
			}
		}},
		{"old schema keeps JSON lines as text", "testdata/batches/schema-2022-07-01-json-as-text.json", 0, func(t *testing.T, e Event) {
			l := e.Record.(*Log)
			if l.IsJSON() || !strings.HasPrefix(l.Text, `{"timestamp"`) {
				t.Errorf("got %+v", l)
			}
		}},
		{"integers written as floats and strings", "testdata/batches/lenient.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*Report)
			if r.Metrics.BilledDurationMs != 694 || r.Metrics.MaxMemoryUsedMB != 84 || r.Status != StatusError || r.ErrorType != "Runtime.ExitError" {
				t.Errorf("got %+v", r)
			}
			if !e.Time.Equal(ms("2022-10-12T00:01:15Z")) {
				t.Errorf("time without fraction: %v", e.Time)
			}
		}},
		{"unreadable time is zero, record kept", "testdata/batches/lenient.json", 1, func(t *testing.T, e Event) {
			if !e.Time.IsZero() {
				t.Errorf("time %v", e.Time)
			}
			if _, ok := e.Record.(*RestoreStart); !ok {
				t.Errorf("record %T", e.Record)
			}
		}},
		{"offset time and string memory", "testdata/batches/lenient.json", 2, func(t *testing.T, e Event) {
			r := e.Record.(*InitStart)
			if r.InstanceMaxMemory != 256 || r.InitializationType != InitSnapStart || !e.Time.Equal(ms("2022-10-11T22:00:15.064Z")) {
				t.Errorf("got %+v at %v", r, e.Time)
			}
		}},
		{"Java request id and object message", "testdata/batches/lenient.json", 3, func(t *testing.T, e Event) {
			l := e.Record.(*Log)
			if l.RequestID != "j1" || l.Message != `{"k":"v"}` || l.Level != "ERROR" || !bytes.Contains(l.Object, []byte(`"extra":1`)) {
				t.Errorf("got %+v", l)
			}
		}},
		{"escaped text", "testdata/batches/lenient.json", 4, func(t *testing.T, e Event) {
			if l := e.Record.(*Log); l.Text != "tab\there \"quoted\" café" {
				t.Errorf("got %q", l.Text)
			}
		}},
		{"number as a log line", "testdata/batches/lenient.json", 5, func(t *testing.T, e Event) {
			if l := e.Record.(*Log); l.Text != "12" {
				t.Errorf("got %q", l.Text)
			}
		}},
		{"unknown type kept raw", "testdata/batches/unknown-and-misshapen.json", 0, func(t *testing.T, e Event) {
			r := e.Record.(*Raw)
			if e.Type != "platform.logsSubscription" || r.Err != "" || !bytes.Contains(r.JSON, []byte(`"Subscribed"`)) {
				t.Errorf("got %s %+v", e.Type, r)
			}
		}},
		{"record of the wrong shape kept raw with a reason", "testdata/batches/unknown-and-misshapen.json", 2, func(t *testing.T, e Event) {
			r := e.Record.(*Raw)
			if e.Type != TypeReport || !strings.Contains(r.Err, "platform.report record") || !bytes.Contains(r.JSON, []byte(`["wrong"]`)) {
				t.Errorf("got %+v", r)
			}
		}},
		{"envelope of the wrong shape kept raw", "testdata/batches/unknown-and-misshapen.json", 3, func(t *testing.T, e Event) {
			r := e.Record.(*Raw)
			if !strings.HasPrefix(r.Err, "event envelope") || !bytes.HasPrefix(r.JSON, []byte(`{"time":12345`)) {
				t.Errorf("got %+v", r)
			}
		}},
		{"element that is not an object kept raw", "testdata/batches/unknown-and-misshapen.json", 4, func(t *testing.T, e Event) {
			if r := e.Record.(*Raw); string(r.JSON) != `"a string element"` {
				t.Errorf("got %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, decodeOne(t, tt.path, tt.index)) })
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		events  int
		wantErr string
	}{
		{"empty array", `[]`, 0, ""},
		{"empty body", ``, 0, "batch is not JSON"},
		{"object", `{"type":"function"}`, 0, "not a JSON array"},
		{"truncated keeps the prefix", `[{"type":"function","record":"a"},{"type":"function","record":"b`, 1, "event 1 at byte"},
		{"garbage after an element", `[{"type":"function","record":"a"} x]`, 1, "event 1"},
		{"unclosed array", `[{"type":"function","record":"a"}`, 1, "unexpected end of the body"},
		{"data after the array", `[{"type":"function","record":"a"}] x`, 1, "end of batch"},
		{"raw control character in a string", "[{\"type\":\"function\",\"record\":\"a\x01\"}]", 0, "control character"},
		{"bad escape", `[{"type":"function","record":"\q"}]`, 0, "an escape"},
		{"bad number", `[{"type":"function","record":01}]`, 0, "',' or '}'"},
		{"nesting as deep as encoding/json allows", "[" + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "]", 1, ""},
		{"deeper nesting", "[" + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "]", 0, "nesting too deep"},
		{"escaped and folded member names", `[{"\u0074ype":"function","ReCoRd":"x"}]`, 1, ""},
		{"whitespace everywhere", " [ {\"type\" : \"function\" , \"record\" : \"a\" } , {\"type\":\"function\",\"record\":\"b\"} ] ", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := DecodeBatch(nil, []byte(tt.body))
			if len(events) != tt.events {
				t.Errorf("%d events, want %d", len(events), tt.events)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeSizesAddUp(t *testing.T) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, readBatch(t, "testdata/batches/lenient.json")); err != nil {
		t.Fatal(err)
	}
	body := compact.Bytes()
	events, err := DecodeBatch(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range events {
		if e.Size <= 0 {
			t.Errorf("%s: size %d", e.Type, e.Size)
		}
		total += e.Size
	}
	// In a compact batch every byte but the brackets and the commas belongs to some event.
	if inner := len(body) - 2 - (len(events) - 1); total != inner {
		t.Errorf("sizes add to %d, body holds %d", total, inner)
	}
}

func TestDecodeOwnsItsMemory(t *testing.T) {
	body := []byte(`[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":{"level":"INFO","message":"m"}},{"type":"x.unknown","record":{"a":1}},` +
		`{"type":"platform.runtimeDone","record":{"requestId":"r","tracing":{"value":"v"},"spans":[{"name":"s"}]}},` +
		`{"record":{"name":"e","events":["INVOKE"]},"type":"platform.extension"}]`)
	events, err := DecodeBatch(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if l := events[0].Record.(*Log); l.Message != "m" || string(l.Object) != `{"level":"INFO","message":"m"}` {
		t.Errorf("log changed with the body: %+v", l)
	}
	if r := events[1].Record.(*Raw); string(r.JSON) != `{"a":1}` {
		t.Errorf("raw changed with the body: %s", r.JSON)
	}
	if r := events[2].Record.(*RuntimeDone); r.RequestID != "r" || r.Tracing.Value != "v" || r.Spans[0].Name != "s" {
		t.Errorf("platform record changed with the body: %+v", r)
	}
	if r := events[3].Record.(*Extension); r.Name != "e" || r.Events[0] != "INVOKE" {
		t.Errorf("platform record changed with the body: %+v", r)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"2022-10-12T00:00:15.064Z", "2022-10-12T00:00:15.064Z"},
		{"2022-10-12T00:00:15Z", "2022-10-12T00:00:15Z"},
		{"2022-08-02T12:01:23:521Z", "2022-08-02T12:01:23.521Z"},
		{"2022-10-12T00:00:15.123456789+01:00", "2022-10-11T23:00:15.123456789Z"},
		{"", ""},
		{"yesterday", ""},
		{"2022-10-12 00:00:15", ""},
	}
	for _, tt := range tests {
		got, ok := ParseTime(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseTime(%q) = %v, want failure", tt.in, got)
			}
			continue
		}
		if want, _ := time.Parse(time.RFC3339Nano, tt.want); !ok || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, ok, want)
		}
	}
}

// gap is the distance in memory from a's bytes to b's.
func gap(a, b string) uintptr {
	return uintptr(unsafe.Pointer(unsafe.StringData(b))) - uintptr(unsafe.Pointer(unsafe.StringData(a)))
}

// TestDecodeDoesNotPinBatches checks the memory the decoded events keep: known types are
// the package's constants, and the text of a batch the events fill only in small part
// does not keep the whole batch alive, whether it is in log lines or in platform records.
func TestDecodeDoesNotPinBatches(t *testing.T) {
	tests := []struct {
		name       string
		padding    string
		wantShared bool
	}{
		{"dense batch shares one copy", "", true},
		{"padded batch gets its own copies", strings.Repeat(" ", 4096), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each log line is followed by platform records whose strings differ from those
			// after the other line in one byte, so that in the batch's copy every string of
			// the second half lies as far from its twin in the first as the records do.
			platform := func(n string) string {
				return `,{"time":"2022-10-12T00:00:15.064Z","type":"platform.runtimeDone","record":{"requestId":"r` + n +
					`","status":"success","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=` + n + `"},` +
					`"spans":[{"name":"span` + n + `","durationMs":1}]}},` +
					`{"time":"2022-10-12T00:02:15.000Z","type":"platform.extension","record":{"name":"e` + n + `","state":"Ready","events":["INVOKE` + n + `"]}}`
			}
			body := `[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"first"}` + platform("1") + tt.padding +
				`,{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"second"}` + platform("2") + `]`
			events, err := DecodeBatch(nil, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if unsafe.StringData(string(events[0].Type)) != unsafe.StringData(string(TypeFunction)) {
				t.Error("a known type is not the package's constant")
			}
			a, b := events[0].Record.(*Log).Text, events[3].Record.(*Log).Text
			inBody := uintptr(strings.Index(body, "second") - strings.Index(body, "first"))
			if shared := gap(a, b) == inBody; shared != tt.wantShared {
				t.Errorf("lines share the batch's copy: %v, want %v", shared, tt.wantShared)
			}
			inBody = uintptr(strings.Index(body, `"r2"`) - strings.Index(body, `"r1"`))
			r1, r2 := events[1].Record.(*RuntimeDone), events[4].Record.(*RuntimeDone)
			e1, e2 := events[2].Record.(*Extension), events[5].Record.(*Extension)
			for _, pair := range [][2]string{{r1.RequestID, r2.RequestID}, {string(r1.Status), string(r2.Status)},
				{r1.Tracing.Value, r2.Tracing.Value}, {r1.Spans[0].Name, r2.Spans[0].Name},
				{e1.Name, e2.Name}, {e1.Events[0], e2.Events[0]}} {
				if shared := gap(pair[0], pair[1]) == inBody; shared != tt.wantShared {
					t.Errorf("platform records' %q and %q share the batch's copy: %v, want %v", pair[0], pair[1], shared, tt.wantShared)
				}
			}
		})
	}
}
