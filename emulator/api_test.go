package emulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// puppet is an extension played by the test itself: the extensions directory holds an
// idle program under the puppet's name, and the test makes the API calls in its place.
type puppet struct {
	t    *testing.T
	base string
	id   string
}

type answer struct {
	status    int
	header    http.Header
	body      string
	errorType string
}

func (p *puppet) call(method, path string, header map[string]string, body string) answer {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	json.Unmarshal(b, &doc)
	return answer{resp.StatusCode, resp.Header, string(b), doc.ErrorType}
}

func (p *puppet) withID() map[string]string { return map[string]string{hExtensionID: p.id} }

// startPuppet starts the emulator's init with a puppet extension and returns once the
// environment waits for it to register.
func startPuppet(t *testing.T) (*Emulator, *puppet, chan error) {
	t.Helper()
	f := newFixture(t)
	script := filepath.Join(f.cfg.ExtensionsDir, "puppet")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.cfg.ShutdownTimeout = 200 * time.Millisecond
	e := f.start(t)
	initDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		initDone <- e.Init(ctx)
	}()
	waitFor(t, func() bool {
		env := e.current()
		if env == nil {
			return false
		}
		env.mu.Lock()
		defer env.mu.Unlock()
		return len(env.exts) == 1
	})
	return e, &puppet{t: t, base: "http://" + e.RuntimeAPI()}, initDone
}

func TestExtensionsAPI(t *testing.T) {
	e, p, initDone := startPuppet(t)
	register := func(name, body string, extra ...string) answer {
		h := map[string]string{hExtensionName: name}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return p.call("POST", "/2020-01-01/extension/register", h, body)
	}
	refusals := []struct {
		name, ext, body, errorType string
	}{
		{"no name", "", `{"events":["INVOKE"]}`, "Extension.InvalidExtensionName"},
		{"not a file in the directory", "other", `{"events":["INVOKE"]}`, "Extension.InvalidExtensionName"},
		{"unknown event", "puppet", `{"events":["INVOKE","RESTORE"]}`, "Extension.InvalidEventType"},
		{"deprecated configurationKeys", "puppet", `{"events":["INVOKE"],"configurationKeys":["k"]}`, "InvalidRequestFormat"},
		{"not JSON", "puppet", `{events`, "InvalidRequestFormat"},
	}
	for _, r := range refusals {
		if a := register(r.ext, r.body); a.status != http.StatusForbidden || a.errorType != r.errorType {
			t.Errorf("register, %s: %d %s, want 403 %s", r.name, a.status, a.body, r.errorType)
		}
	}
	a := register("puppet", `{"events":["INVOKE","SHUTDOWN"]}`, hAcceptFeature, "accountId")
	p.id = a.header.Get(hExtensionID)
	if a.status != http.StatusOK || p.id == "" ||
		a.body != `{"accountId":"123456789012","functionName":"hello-fn","functionVersion":"$LATEST","handler":"bootstrap"}` {
		t.Fatalf("register = %d %q (identifier %q)", a.status, a.body, p.id)
	}
	if a := register("puppet", `{"events":["INVOKE"]}`); a.status != http.StatusForbidden || a.errorType != "Extension.InvalidExtensionState" {
		t.Errorf("second register = %d %s", a.status, a.body)
	}

	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer listener.Close()
	port := listener.URL[strings.LastIndexByte(listener.URL, ':')+1:]
	sub := `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:` + port + `/t"}}`
	if a := p.call("PUT", "/2022-07-01/telemetry", nil, sub); a.status != http.StatusForbidden || a.errorType != "Extension.MissingExtensionIdentifier" {
		t.Errorf("subscribe without identifier = %d %s", a.status, a.body)
	}
	if a := p.call("PUT", "/2022-07-01/telemetry", p.withID(), `{"schemaVersion":"2022-12-13","types":[],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain"}}`); a.status != http.StatusBadRequest ||
		a.body != `{"errorType":"ValidationError","errorMessage":"URI port is not provided; types should not be empty"}` {
		t.Errorf("invalid subscribe = %d %s", a.status, a.body)
	}
	for i := 0; i < 2; i++ {
		if a := p.call("PUT", "/2022-07-01/telemetry", p.withID(), sub); a.status != http.StatusOK || a.body != `"OK"` {
			t.Errorf("subscribe %d = %d %s", i, a.status, a.body)
		}
	}
	if a := p.call("PUT", "/2020-08-15/logs", p.withID(), `{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:`+port+`"}}`); a.status != http.StatusBadRequest || a.errorType != "Logs.ValidationError" || !strings.Contains(a.body, "exclude each other") {
		t.Errorf("Logs API subscribe after the Telemetry API = %d %s", a.status, a.body)
	}
	if a := p.call("GET", "/2020-01-01/extension/event/next", map[string]string{hExtensionID: "nobody"}, ""); a.status != http.StatusForbidden || a.errorType != "Extension.UnknownExtensionIdentifier" {
		t.Errorf("next with an unknown identifier = %d %s", a.status, a.body)
	}

	events := make(chan answer, 3)
	next := func() { events <- p.call("GET", "/2020-01-01/extension/event/next", p.withID(), "") }
	go next()
	select {
	case err := <-initDone:
		if err != nil {
			t.Fatalf("init: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("init did not end after the puppet called next")
	}
	if a := p.call("PUT", "/2022-07-01/telemetry", p.withID(), sub); a.status != http.StatusForbidden || a.errorType != "Telemetry.SubscriptionClosed" {
		t.Errorf("subscribe after init = %d %s", a.status, a.body)
	}
	if a := register("late", `{}`); a.status != http.StatusForbidden || a.errorType != "Extension.RegistrationClosed" {
		t.Errorf("register after init = %d %s", a.status, a.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := e.Invoke(ctx, Request{Payload: []byte(`{}`), TraceHeader: "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"})
	if err != nil || resp.FunctionError != "" {
		t.Fatalf("invoke: %v %s", err, resp.Payload)
	}
	inv := <-events
	var ev struct {
		EventType          string
		DeadlineMs         int64
		RequestID          string
		InvokedFunctionArn string
		Tracing            struct{ Type, Value string }
	}
	json.Unmarshal([]byte(inv.body), &ev)
	if inv.header.Get(hEventID) == "" || ev.EventType != "INVOKE" || ev.RequestID != resp.RequestID ||
		ev.InvokedFunctionArn != "arn:aws:lambda:us-east-1:123456789012:function:hello-fn" ||
		ev.Tracing.Type != "X-Amzn-Trace-Id" || ev.Tracing.Value != "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1" ||
		time.UnixMilli(ev.DeadlineMs).Before(time.Now()) {
		t.Errorf("INVOKE = %s", inv.body)
	}
	go next()
	rep := shutdown(t, e)
	sd := <-events
	if !strings.Contains(sd.body, `"shutdownReason":"spindown"`) || len(rep.Killed) != 1 {
		t.Errorf("SHUTDOWN = %s, killed %v", sd.body, rep.Killed)
	}
}

// The invoke endpoint answers on the emulator's path and on the function's own, including
// for a function named "function", whose own path is the emulator's.
func TestInvokePaths(t *testing.T) {
	for _, name := range []string{"function", "hello-fn"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.FunctionName = name
			h := f.start(t).InvokeHandler()
			for path, want := range map[string]int{
				InvokePath: http.StatusNoContent,
				"/2015-03-31/functions/" + name + "/invocations":                                                http.StatusNoContent,
				"/2015-03-31/functions/other/invocations":                                                       http.StatusNotFound,
				"/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:" + name + "/invocations": http.StatusNoContent,
				"/2015-03-31/functions/123456789012:function:" + name + ":$LATEST/invocations":                  http.StatusNoContent,
				"/2015-03-31/functions/" + name + "/invocations?Qualifier=%24LATEST":                            http.StatusNoContent,
				"/2015-03-31/functions/" + name + "/invocations?Qualifier=live":                                 http.StatusNotFound,
				"/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:" + name + "/invocations": http.StatusNotFound,
				"/2015-03-31/functions/x:v1/invocations?Qualifier=v2":                                           http.StatusBadRequest,
			} {
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
				req.Header.Set("X-Amz-Invocation-Type", "DryRun")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != want {
					t.Errorf("POST %s: %d, want %d", path, rec.Code, want)
				}
			}
		})
	}
}
