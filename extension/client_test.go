package extension

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/lambdaapi"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
)

// testCtx bounds a test's waits so that a broken exchange fails instead of hanging.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fakeAPI(t *testing.T, opts lambdatest.Options) *lambdatest.Server {
	t.Helper()
	s := lambdatest.New(opts)
	t.Cleanup(s.Close)
	return s
}

func TestRegister(t *testing.T) {
	ctx := testCtx(t)
	api := fakeAPI(t, lambdatest.Options{AccountID: "123456789012"})
	c := NewClient(api.Addr(), "lambda-otel", &http.Client{})
	got, err := c.Register(ctx, []EventType{Invoke, Shutdown}, FeatureAccountID)
	if err != nil {
		t.Fatal(err)
	}
	call := lambdatest.Recv(t, ctx, api.Registers, "register")
	if call.Name != "lambda-otel" || call.AcceptFeatures != "accountId" || len(call.Events) != 2 || call.Events[0] != "INVOKE" || call.Events[1] != "SHUTDOWN" {
		t.Errorf("register sent %+v", call)
	}
	want := RegisterResponse{FunctionName: "test-function", FunctionVersion: "$LATEST", Handler: "bootstrap", AccountID: "123456789012"}
	if got != want {
		t.Errorf("register answer %+v, want %+v", got, want)
	}
	if c.ID() != "ext-lambda-otel" {
		t.Errorf("identifier %q", c.ID())
	}
}

func TestRegisterRefused(t *testing.T) {
	api := fakeAPI(t, lambdatest.Options{RegisterStatus: http.StatusForbidden})
	_, err := NewClient(api.Addr(), "x", &http.Client{}).Register(testCtx(t), []EventType{Invoke})
	if lambdaapi.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("error %v, want a 403", err)
	}
	if err.Error() != "register: HTTP 403: Extension.Test: register refused by the test" {
		t.Errorf("message %q", err)
	}
}

func TestNextEvents(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, ev Event, err error)
	}{
		{"invoke with every field", `{"eventType":"INVOKE","deadlineMs":1700000000123,"requestId":"3da1f2dc-3222-475e-9205-e2e6c6318895",
			"invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest",
			"tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"}}`,
			func(t *testing.T, ev Event, err error) {
				if err != nil || ev.Type != Invoke || ev.Invoke == nil || ev.Shutdown != nil {
					t.Fatalf("%+v %v", ev, err)
				}
				in := ev.Invoke
				if in.RequestID != "3da1f2dc-3222-475e-9205-e2e6c6318895" || in.EventID != "event-id" ||
					in.InvokedFunctionArn != "arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest" ||
					in.Tracing == nil || in.Tracing.Type != "X-Amzn-Trace-Id" || in.Tracing.Value == "" {
					t.Errorf("%+v", in)
				}
				if !in.DeadlineMs.Time().Equal(time.UnixMilli(1700000000123)) {
					t.Errorf("deadline %v", in.DeadlineMs.Time())
				}
			}},
		{"invoke without tracing", `{"eventType":"INVOKE","deadlineMs":1700000000000,"requestId":"r"}`,
			func(t *testing.T, ev Event, err error) {
				if err != nil || ev.Invoke.Tracing != nil {
					t.Errorf("%+v %v", ev.Invoke, err)
				}
			}},
		{"shutdown in lower case with a string deadline", `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":"1700000002000"}`,
			func(t *testing.T, ev Event, err error) {
				if err != nil || ev.Shutdown == nil || ev.Shutdown.Reason != Spindown || ev.Shutdown.DeadlineMs != 1700000002000 {
					t.Errorf("%+v %v", ev.Shutdown, err)
				}
			}},
		{"shutdown in mixed case with a float deadline", `{"eventType":"SHUTDOWN","shutdownReason":"Failure","deadlineMs":1700000002000.0}`,
			func(t *testing.T, ev Event, err error) {
				if err != nil || ev.Shutdown.Reason != Failure || ev.Shutdown.DeadlineMs != 1700000002000 {
					t.Errorf("%+v %v", ev.Shutdown, err)
				}
			}},
		{"shutdown with a bad deadline is still a shutdown", `{"eventType":"SHUTDOWN","shutdownReason":"TIMEOUT","deadlineMs":"soon"}`,
			func(t *testing.T, ev Event, err error) {
				if err == nil || ev.Shutdown == nil || ev.Shutdown.Reason != Timeout {
					t.Errorf("%+v %v", ev.Shutdown, err)
				}
			}},
		{"unknown type", `{"eventType":"RESTORE"}`,
			func(t *testing.T, ev Event, err error) {
				if err != nil || ev.Type != "RESTORE" || ev.Invoke != nil || ev.Shutdown != nil {
					t.Errorf("%+v %v", ev, err)
				}
			}},
		{"not JSON", `<html>`,
			func(t *testing.T, ev Event, err error) {
				if err == nil || ev.Type != "" {
					t.Errorf("%+v %v", ev, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			api := fakeAPI(t, lambdatest.Options{})
			c := NewClient(api.Addr(), "x", &http.Client{})
			if _, err := c.Register(ctx, []EventType{Invoke, Shutdown}); err != nil {
				t.Fatal(err)
			}
			type result struct {
				ev  Event
				err error
			}
			got := make(chan result, 1)
			go func() {
				ev, err := c.Next(ctx)
				got <- result{ev, err}
			}()
			if id := lambdatest.Recv(t, ctx, api.NextCalls, "event/next"); id != c.ID() {
				t.Errorf("next sent identifier %q, want %q", id, c.ID())
			}
			if err := api.SendRaw(ctx, http.StatusOK, []byte(tt.body)); err != nil {
				t.Fatal(err)
			}
			r := lambdatest.Recv(t, ctx, got, "the event")
			tt.check(t, r.ev, r.err)
		})
	}
}

func TestNextCancelled(t *testing.T) {
	api := fakeAPI(t, lambdatest.Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := NewClient(api.Addr(), "x", &http.Client{}).Next(ctx)
		done <- err
	}()
	lambdatest.Recv(t, testCtx(t), api.NextCalls, "event/next")
	cancel()
	if err := lambdatest.Recv(t, testCtx(t), done, "Next to return"); err == nil {
		t.Fatal("Next returned no error after its context was cancelled")
	}
}

func TestReportErrors(t *testing.T) {
	for _, path := range []string{"init/error", "exit/error"} {
		t.Run(path, func(t *testing.T) {
			ctx := testCtx(t)
			api := fakeAPI(t, lambdatest.Options{})
			c := NewClient(api.Addr(), "x", &http.Client{})
			if _, err := c.Register(ctx, nil); err != nil {
				t.Fatal(err)
			}
			report := c.InitError
			if path == "exit/error" {
				report = c.ExitError
			}
			if err := report(ctx, "Extension.ConfigInvalid", ErrorRequest{ErrorMessage: "bad config"}); err != nil {
				t.Fatal(err)
			}
			call := lambdatest.Recv(t, ctx, api.Errors, path)
			if call.Path != path || call.ErrorType != "Extension.ConfigInvalid" || call.Identifier != "ext-x" ||
				call.Body["errorMessage"] != "bad config" || call.Body["errorType"] != "Extension.ConfigInvalid" {
				t.Errorf("sent %+v", call)
			}
			if st, ok := call.Body["stackTrace"].([]any); !ok || len(st) != 0 {
				t.Errorf("stackTrace %#v, want []", call.Body["stackTrace"])
			}
		})
	}
}
