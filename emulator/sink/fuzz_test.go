package sink

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzHandler sends arbitrary bodies to each signal as protobuf or JSON: the sink answers
// with one of its documented statuses and never panics, and the counts only grow by what a
// 200 accepted.
func FuzzHandler(f *testing.F) {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("invoke")
	span.SetTraceID([16]byte{1})
	span.SetSpanID([8]byte{2})
	pb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	js, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	f.Add(uint8(0), true, pb)
	f.Add(uint8(0), false, js)
	f.Add(uint8(1), false, []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}`))
	f.Add(uint8(2), false, []byte(`{"resourceMetrics":[{}]}`))
	f.Add(uint8(2), true, []byte{0x0a, 0xff, 0xff})

	s, err := Start(context.Background(), "127.0.0.1:0", Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(context.Background()) })
	h := s.routes()
	paths := []string{"/v1/traces", "/v1/logs", "/v1/metrics"}
	f.Fuzz(func(t *testing.T, signal uint8, proto bool, body []byte) {
		req := httptest.NewRequest(http.MethodPost, paths[int(signal)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if proto {
			req.Header.Set("Content-Type", "application/x-protobuf")
		}
		before := s.Counts()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := s.Counts()
		switch rec.Code {
		case http.StatusOK:
			if after.Requests != before.Requests+1 {
				t.Errorf("200 without counting the request: %+v -> %+v", before, after)
			}
		case http.StatusBadRequest:
			if after != before {
				t.Errorf("a refused request changed the counts: %+v -> %+v", before, after)
			}
		default:
			t.Errorf("status %d for a %d-byte body", rec.Code, len(body))
		}
	})
}
