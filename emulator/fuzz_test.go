package emulator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzAPI sends arbitrary requests to the Runtime, Extensions, Telemetry and Logs APIs of an
// environment in its init phase: every request is answered with JSON and an API status,
// nothing panics, and nothing is accepted from a caller that never registered.
func FuzzAPI(f *testing.F) {
	routes := []struct{ method, path string }{
		{"GET", "/2018-06-01/runtime/invocation/next"},
		{"POST", "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response"},
		{"POST", "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/error"},
		{"POST", "/2018-06-01/runtime/init/error"},
		{"POST", "/2020-01-01/extension/register"},
		{"GET", "/2020-01-01/extension/event/next"},
		{"POST", "/2020-01-01/extension/init/error"},
		{"POST", "/2020-01-01/extension/exit/error"},
		{"PUT", "/2022-07-01/telemetry"},
		{"PUT", "/2020-08-15/logs"},
		{"DELETE", "/2022-07-01/telemetry/x"},
	}
	f.Add(uint8(4), "my-extension", "", []byte(`{"events":["INVOKE","SHUTDOWN"]}`))
	f.Add(uint8(8), "", "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", []byte(`{"schemaVersion":"2022-12-13","types":["platform","function","extension"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":100},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`))
	f.Add(uint8(2), "", "", []byte(`{"errorMessage":"Error parsing event data.","errorType":"InvalidEventDataException","stackTrace":[]}`))
	f.Add(uint8(3), "", "", []byte(`not json`))

	e, err := New(Config{TaskDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	env := e.newEnvironment("init")
	e.mu.Lock()
	e.env = env
	e.mu.Unlock()
	f.Cleanup(func() { e.Shutdown(context.Background()) })
	h := e.apiHandler()
	// A cancelled context ends the calls that wait (next) at once.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, route uint8, name, id string, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequestWithContext(done, rt.method, rt.path, bytes.NewReader(body))
		req.Header.Set(hExtensionName, name)
		req.Header.Set(hExtensionID, id)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			// Only the runtime's next may be answered, and it waits: here it was cancelled.
			if rec.Body.Len() > 0 {
				t.Errorf("%s %s answered 200 %s", rt.method, rt.path, rec.Body)
			}
		case http.StatusAccepted:
			if rt.path != "/2018-06-01/runtime/init/error" {
				t.Errorf("%s %s accepted without a registered caller", rt.method, rt.path)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Errorf("%s %s: status %d", rt.method, rt.path, rec.Code)
		}
	})
}
