package telemetry

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// addSeeds adds every example event of the Telemetry API reference (testdata/events), each
// alone and all in one batch as the platform would deliver them, the batches beside them,
// and inputs that once found faults.
func addSeeds(f *testing.F) {
	var all [][]byte
	for _, path := range inputs(f) {
		b := readBatch(f, path)
		f.Add(b)
		if filepath.Base(filepath.Dir(path)) == "events" {
			all = append(all, b[1:len(b)-1])
		}
	}
	f.Add(append(append([]byte("[\n"), bytes.Join(all, []byte(",\n"))...), "\n]"...))
	f.Add([]byte(`[{"time":"2022-08-02T12:01:23:521Z","type":"platform.runtimeDone","record":{"spans":[{"start":"2022-08-02T12:01:23:521Z"}]}}]`))
	f.Add([]byte("[\"\xff\xfe\",{\"type\":\"function\",\"record\":\"\xc3\x28\"}]"))
	f.Add([]byte(`[{"type":"function","record":{"LEVEL":"warn","level":"x","Message":{"a":[1]},"AWSrequestId":"j","requestId":null}}]`))
	f.Add([]byte(`[{"type":"function","record":{"requestId":"0","requestId":null}}]`))
	f.Add([]byte(`[{"\u0074ype":"function","record":{"meſſage":"hi","me\u0073sage":"there"}},{"type":"function","Type":null,"record":null}]`))
	f.Add([]byte("[" + strings.Repeat("[", 600) + strings.Repeat("]", 600) + "]"))
}

// FuzzDecodeBatch checks that no body makes the decoder panic, return a nil record, or
// account for more bytes than it was given, and holds the hand-written scanner to
// encoding/json: the same bodies are valid, with the same elements and the same text.
func FuzzDecodeBatch(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := DecodeBatch(nil, body)
		trimmed := bytes.TrimSpace(body)
		valid := json.Valid(body) && len(trimmed) > 0 && trimmed[0] == '['
		if valid != (err == nil) {
			t.Fatalf("encoding/json says valid=%v, DecodeBatch says %v", valid, err)
		}
		if valid {
			compareWithEncodingJSON(t, body, events)
		}
		total := 0
		for _, e := range events {
			if e.Record == nil {
				t.Fatalf("nil record for %q", e.Type)
			}
			if e.Size <= 0 {
				t.Fatalf("size %d", e.Size)
			}
			total += e.Size
		}
		if total > len(body) {
			t.Fatalf("sizes add to %d for a %d-byte body", total, len(body))
		}
	})
}

// compareWithEncodingJSON checks each element against encoding/json's reading of it.
func compareWithEncodingJSON(t *testing.T, body []byte, events []Event) {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		t.Fatalf("encoding/json cannot read a body it calls valid: %v", err)
	}
	if len(elems) != len(events) {
		t.Fatalf("%d events, encoding/json sees %d", len(events), len(elems))
	}
	for i, raw := range elems {
		var e struct {
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if json.Unmarshal(raw, &e) != nil {
			continue // not an envelope: kept as *Raw, nothing to compare
		}
		if _, isRaw := events[i].Record.(*Raw); !isRaw && string(events[i].Type) != e.Type {
			t.Fatalf("event %d type %q, encoding/json reads %q", i, events[i].Type, e.Type)
		}
		l, ok := events[i].Record.(*Log)
		if !ok || len(e.Record) == 0 {
			continue
		}
		switch e.Record[0] {
		case '"':
			var want string
			if json.Unmarshal(e.Record, &want) == nil && l.Text != want {
				t.Fatalf("event %d text %q, encoding/json reads %q", i, l.Text, want)
			}
		case '{':
			checkLogObject(t, i, l, e.Record)
		}
	}
}

// nonNull is the last value of a member that is not null: the decoder reads a JSON log
// line's fields as encoding/json reads string fields, which a null leaves untouched, so a
// later null does not undo an earlier value.
type nonNull json.RawMessage

func (n *nonNull) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		*n = append((*n)[:0], b...)
	}
	return nil
}

// checkLogObject compares the fields read from a JSON log line with encoding/json's reading.
func checkLogObject(t *testing.T, i int, l *Log, raw json.RawMessage) {
	t.Helper()
	var w struct {
		Level        nonNull `json:"level"`
		RequestID    nonNull `json:"requestId"`
		AWSRequestID nonNull `json:"AWSrequestId"`
		Message      nonNull `json:"message"`
	}
	if json.Unmarshal(raw, &w) != nil {
		return
	}
	text := func(v nonNull) string {
		var s string
		switch {
		case len(v) == 0:
			return ""
		case len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil:
			return s
		}
		return string(v)
	}
	id := text(w.RequestID)
	if id == "" {
		id = text(w.AWSRequestID)
	}
	if l.Level != text(w.Level) || l.RequestID != id || l.Message != text(w.Message) || !bytes.Equal(l.Object, raw) {
		t.Fatalf("event %d log %+v, encoding/json reads level %q request %q message %q", i, l, text(w.Level), id, text(w.Message))
	}
}

// FuzzListenerHandler drives the request handler with arbitrary bodies: it must answer
// 200, and every batch must be either decoded in whole or counted as malformed.
func FuzzListenerHandler(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		st := new(Stats)
		buf := NewBuffer(1<<20, st)
		l := newListener(buf, st)
		var rc fasthttp.RequestCtx
		rc.Request.Header.SetMethod(fasthttp.MethodPost)
		rc.Request.SetBody(body)
		l.handle(&rc)
		if rc.Response.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("status %d", rc.Response.StatusCode())
		}
		c := st.Snapshot()
		n, _ := buf.Len()
		if c.Batches != 1 || c.Events != uint64(n)+c.Dropped[DropBufferFull] || c.Dropped[DropListenerPanic] != 0 {
			t.Fatalf("counts %+v with %d buffered", c, n)
		}
		if _, err := DecodeBatch(nil, body); (err != nil) != (c.Dropped[DropMalformedBatch] == 1) {
			t.Fatalf("decode error %v but malformed count %d", err, c.Dropped[DropMalformedBatch])
		}
	})
}
