package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// platformTypes are the types whose records the hand decoder reads.
var platformTypes = []EventType{TypeInitStart, TypeInitRuntimeDone, TypeInitReport, TypeStart, TypeRuntimeDone,
	TypeReport, TypeRestoreStart, TypeRestoreRuntimeDone, TypeRestoreReport, TypeExtension,
	TypeTelemetrySubscription, TypeLogsDropped}

// example is the record of a platform event under testdata/events.
type example struct {
	name   string
	typ    EventType
	record []byte
}

// exampleRecords returns the record of each platform event under testdata/events.
func exampleRecords(t testing.TB) []example {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Type   EventType       `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if newPlatformRecord(e.Type) != nil {
			out = append(out, example{strings.TrimSuffix(filepath.Base(path), ".json"), e.Type, e.Record})
		}
	}
	return out
}

// handDecode reads record, of type t, with the hand decoder alone; ok is false where it
// leaves the record to encoding/json.
func handDecode(t EventType, record []byte) (rec Record, ok bool) {
	s := scanner{buf: record, str: string(record)}
	s.skipSpace()
	rec = newPlatformRecord(t)
	ok = s.decodeRecord(rec)
	s.skipSpace()
	return rec, ok && s.pos == len(record)
}

// unmarshal reads record, of type t, as the decoder did before it read records by hand.
func unmarshal(t EventType, record []byte) Record {
	rec := newPlatformRecord(t)
	if err := json.Unmarshal(record, rec); err != nil {
		return &Raw{JSON: bytes.Trim(record, " \t\r\n"), Err: fmt.Sprintf("%s record: %v", t, err)}
	}
	return rec
}

// TestPlatformExamplesDecodeByHand holds the hand decoder to encoding/json on every example
// of the Telemetry API reference, and checks that none of them needs encoding/json.
func TestPlatformExamplesDecodeByHand(t *testing.T) {
	seen := map[EventType]bool{}
	for _, ex := range exampleRecords(t) {
		t.Run(ex.name, func(t *testing.T) {
			got, ok := handDecode(ex.typ, ex.record)
			if !ok {
				t.Fatal("the hand decoder left the record to encoding/json")
			}
			if want := unmarshal(ex.typ, ex.record); !reflect.DeepEqual(got, want) {
				t.Errorf("hand decoder read %+v, encoding/json %+v", got, want)
			}
		})
		seen[ex.typ] = true
	}
	for _, typ := range platformTypes {
		if !seen[typ] {
			t.Errorf("no example of %s under testdata/events", typ)
		}
	}
}

// TestPlatformRecordLeniency covers what encoding/json accepts beyond the examples: the
// hand decoder must read it the same, and only the cases marked declined may be left to
// encoding/json.
func TestPlatformRecordLeniency(t *testing.T) {
	tests := []struct {
		name     string
		typ      EventType
		record   string
		declined bool
	}{
		{"names in any case, the last duplicate winning", TypeStart, `{"REQUESTID":"a","requestid":"b","Version":"v"}`, false},
		{"names folded beyond ASCII", TypeStart, `{"requeſtId":"a","\u0076ersion":"v"}`, true},
		{"folded name alone", TypeStart, `{"requeſtId":"a"}`, false},
		{"null leaves a field untouched", TypeReport, `{"requestId":"a","requestId":null,"metrics":null,"spans":null}`, false},
		{"null pointer after an object", TypeRuntimeDone, `{"tracing":{"value":"v"},"tracing":null,"metrics":{"durationMs":1}}`, false},
		{"duplicate objects merge", TypeRuntimeDone, `{"tracing":{"value":"v"},"tracing":{"type":"t"},"metrics":{"durationMs":1},"metrics":{"producedBytes":"2"}}`, false},
		{"integers as floats, strings and exponents", TypeReport, `{"metrics":{"billedDurationMs":256.9,"maxMemoryUsedMB":"84","memorySizeMB":1e3,"durationMs":-0}}`, false},
		{"empty string leaves an integer zero", TypeLogsDropped, `{"droppedBytes":"","droppedRecords":null}`, false},
		{"integer out of range", TypeLogsDropped, `{"droppedBytes":1e19}`, true},
		{"integer in a string with an escape", TypeLogsDropped, `{"droppedBytes":"\u0031"}`, true},
		{"float out of range", TypeInitReport, `{"metrics":{"durationMs":1e400}}`, true},
		{"lenient span starts", TypeInitRuntimeDone, `{"spans":[{"name":"a","start":"2022-08-02T12:01:23:521Z"},{"start":5},{"start":"x","start":null},null,{}]}`, false},
		{"spans replaced by a later member", TypeRestoreRuntimeDone, `{"spans":[{"name":"a"},{"name":"b"}],"spans":[{"durationMs":2}]}`, false},
		{"empty arrays are not nil", TypeExtension, `{"events":[],"name":"caf\u00e9 \ud83d\ude00","state":"\u0000"}`, false},
		{"string elements", TypeTelemetrySubscription, `{"types":["platform","function"],"types":["extension"]}`, false},
		{"null element", TypeTelemetrySubscription, `{"types":["platform",null]}`, true},
		{"unknown members skipped", TypeRestoreStart, `{"x":{"y":[1,{"z":null}]},"functionName":"f","":0,"instanceMaxMemory":"256"}`, false},
		{"unknown member with an escaped name", TypeRestoreStart, `{"f\u0075nctionName":"f"}`, true},
		{"wrong type", TypeStart, `{"requestId":5}`, true},
		{"record of the wrong kind", TypeStart, `["requestId"]`, true},
		{"null record", TypeInitStart, `null`, false},
		{"invalid UTF-8", TypeExtension, "{\"name\":\"\xff\xfe\",\"state\":\"\xc3\xa9\"}", false},
		{"space everywhere", TypeRuntimeDone, " { \"spans\" : [ { \"name\" : \"a\" } , null ] , \"status\" : \"error\" } ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := handDecode(tt.typ, []byte(tt.record))
			if ok == tt.declined {
				t.Fatalf("hand decoder took the record: %v, want %v", ok, !tt.declined)
			}
			want := unmarshal(tt.typ, []byte(tt.record))
			if ok && !reflect.DeepEqual(got, want) {
				t.Errorf("hand decoder read %+v, encoding/json %+v", got, want)
			}
			for _, body := range envelopes(tt.typ, []byte(tt.record)) {
				events, err := DecodeBatch(nil, []byte(body))
				if err != nil || len(events) != 1 {
					t.Fatalf("%s: %d events, %v", body, len(events), err)
				}
				if !reflect.DeepEqual(events[0].Record, want) {
					t.Errorf("%s: DecodeBatch read %+v, encoding/json %+v", body, events[0].Record, want)
				}
			}
		})
	}
}

// envelopes wraps record, of type typ, in events whose records DecodeBatch reads in different
// ways: after the type, the platform's order, as the walk passes the record; before the
// type, after the walk; and read as the walk passes it, then dropped for a type that a later
// member changes, or kept in spite of a later null.
func envelopes(typ EventType, record []byte) []string {
	other := TypeStart
	if typ == TypeStart {
		other = TypeReport
	}
	r, t := string(record), `"`+string(typ)+`"`
	return []string{
		`[{"type":` + t + `,"record":` + r + `}]`,
		`[{"record":` + r + `,"type":` + t + `}]`,
		`[{"type":"` + string(other) + `","record":` + r + `,"type":` + t + `}]`,
		`[{"type":` + t + `,"record":` + r + `,"record":null}]`,
	}
}

// FuzzPlatformRecord holds the hand decoder to encoding/json for every platform type and
// every envelope: where encoding/json reads a record, DecodeBatch must read the same, and
// where it fails, DecodeBatch must keep the *Raw it always kept, with encoding/json's message.
func FuzzPlatformRecord(f *testing.F) {
	for _, ex := range exampleRecords(f) {
		f.Add(ex.record)
	}
	for _, body := range [][]byte{platformBatch(), readBatch(f, "testdata/batches/lenient.json"),
		readBatch(f, "testdata/batches/unknown-and-misshapen.json")} {
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			f.Fatal(err)
		}
		for _, raw := range elems[:min(len(elems), 6)] {
			var e struct {
				Record json.RawMessage `json:"record"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Record != nil {
				f.Add([]byte(e.Record))
			}
		}
	}
	f.Add([]byte(`{"Tracing":{"SPANID":"s"},"tracing":{"value":"v"},"spans":[null,{"start":"2022-10-12T00:00:15+02:00"}],"metrics":{"producedBytes":"12"}}`))
	f.Add([]byte(`{"events":["a","b"],"events":["c"],"types":[],"droppedBytes":2.5,"reason":"\u00e9\n"}`))
	f.Fuzz(func(t *testing.T, record []byte) {
		if !json.Valid(record) {
			return // the batch would be malformed, or hold other events
		}
		for _, typ := range platformTypes {
			want := unmarshal(typ, record)
			for i, body := range envelopes(typ, record) {
				events, err := DecodeBatch(nil, []byte(body))
				if err != nil && strings.Contains(err.Error(), "nesting too deep") {
					return // two levels deeper than the record alone
				}
				if err != nil || len(events) != 1 {
					t.Fatalf("%s (envelope %d): %d events, %v", typ, i, len(events), err)
				}
				if !reflect.DeepEqual(events[0].Record, want) {
					t.Fatalf("%s (envelope %d): DecodeBatch read %#v, encoding/json %#v", typ, i, events[0].Record, want)
				}
			}
		}
	})
}

// The hand decoder lists each struct's members again in fieldsOf: they must be exactly the
// fields its JSON tags name, or a member would be decoded by hand differently from
// encoding/json.
func TestFieldsOfMatchesTags(t *testing.T) {
	for _, p := range []any{new(InitStart), new(InitRuntimeDone), new(InitReport), new(InitReportMetrics),
		new(Start), new(RuntimeDone), new(RuntimeDoneMetrics), new(Report), new(ReportMetrics),
		new(RestoreStart), new(RestoreRuntimeDone), new(RestoreReport), new(RestoreReportMetrics),
		new(Extension), new(TelemetrySubscription), new(LogsDropped), new(TraceContext), new(Span)} {
		v := reflect.ValueOf(p).Elem()
		var tags []string
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			tags = append(tags, name)
		}
		var listed []string
		for _, f := range fieldsOf(p) {
			if f.name == "" {
				continue
			}
			listed = append(listed, f.name)
			i := slices.Index(tags, f.name)
			if i < 0 || reflect.ValueOf(f.ptr).Pointer() != v.Field(i).Addr().Pointer() {
				t.Errorf("%T: fieldsOf lists %q with a pointer to another field than its tag's", p, f.name)
			}
		}
		if len(listed) != len(tags) {
			t.Errorf("%T: fieldsOf lists %q, the tags name %q", p, listed, tags)
		}
	}
}
