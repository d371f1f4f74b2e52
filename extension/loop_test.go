package extension

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/lambdaapi"
	"github.com/lambda-otel/lambda-otel/internal/lambdatest"
	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// call records one handler call with the deadline its context carried.
type handlerCall struct {
	kind     EventType
	invoke   *InvokeEvent
	shutdown *ShutdownEvent
	deadline time.Time
	hasDL    bool
}

type recordingHandler struct {
	calls chan handlerCall
	panic bool
}

func newRecorder() *recordingHandler { return &recordingHandler{calls: make(chan handlerCall, 16)} }

func (h *recordingHandler) Invoke(ctx context.Context, ev *InvokeEvent) error {
	dl, ok := ctx.Deadline()
	h.calls <- handlerCall{kind: Invoke, invoke: ev, deadline: dl, hasDL: ok}
	if h.panic {
		panic("handler bug")
	}
	return errors.New("invoke failed")
}

func (h *recordingHandler) Shutdown(ctx context.Context, ev *ShutdownEvent) error {
	dl, ok := ctx.Deadline()
	h.calls <- handlerCall{kind: Shutdown, shutdown: ev, deadline: dl, hasDL: ok}
	return nil
}

func testLogger(level slog.Level) (*slog.Logger, *testbin.Buffer) {
	var b testbin.Buffer
	return slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: level})), &b
}

type loopRun struct {
	// cancel stops the loop; its context has no deadline, so the handlers see only the events'.
	cancel context.CancelFunc
	api    *lambdatest.Server
	h      *recordingHandler
	logs   *testbin.Buffer
	done   chan error
}

func startLoop(t *testing.T, ctx context.Context, panicky bool) *loopRun {
	t.Helper()
	api := fakeAPI(t, lambdatest.Options{})
	c := NewClient(api.Addr(), "x", &http.Client{})
	if _, err := c.Register(ctx, []EventType{Invoke, Shutdown}); err != nil {
		t.Fatal(err)
	}
	log, logs := testLogger(slog.LevelDebug)
	lctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &loopRun{cancel: cancel, api: api, h: newRecorder(), logs: logs, done: make(chan error, 1)}
	r.h.panic = panicky
	go func() { r.done <- Loop(lctx, c, r.h, log) }()
	return r
}

// send waits for the loop to be at event/next and answers it.
func (r *loopRun) send(t *testing.T, ctx context.Context, status int, body string) {
	t.Helper()
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	if err := r.api.SendRaw(ctx, status, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestLoopInvokeThenShutdown(t *testing.T) {
	ctx := testCtx(t)
	r := startLoop(t, ctx, false)
	invokeDL := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	shutdownDL := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)

	r.send(t, ctx, 200, `{"eventType":"INVOKE","requestId":"r1","deadlineMs":`+ms(invokeDL)+`}`)
	c := lambdatest.Recv(t, ctx, r.h.calls, "Invoke")
	if c.kind != Invoke || c.invoke.RequestID != "r1" || !c.hasDL || !c.deadline.Equal(invokeDL) {
		t.Errorf("Invoke call %+v, want deadline %v", c, invokeDL)
	}
	r.send(t, ctx, 200, `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":`+ms(shutdownDL)+`}`)
	c = lambdatest.Recv(t, ctx, r.h.calls, "Shutdown")
	if c.kind != Shutdown || c.shutdown.Reason != Spindown || !c.hasDL || !c.deadline.Equal(shutdownDL.Add(-shutdownMargin)) {
		t.Errorf("Shutdown call %+v, want deadline %v", c, shutdownDL.Add(-shutdownMargin))
	}
	if err := lambdatest.Recv(t, ctx, r.done, "Loop to return"); err != nil {
		t.Errorf("Loop returned %v after SHUTDOWN", err)
	}
	if !strings.Contains(r.logs.String(), "invoke failed") {
		t.Errorf("the handler's error was not logged: %s", r.logs)
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func TestLoopSurvivesHandlerPanicsAndOddEvents(t *testing.T) {
	ctx := testCtx(t)
	r := startLoop(t, ctx, true)
	r.send(t, ctx, 200, `{"eventType":"INVOKE","requestId":"r1"}`)
	if c := lambdatest.Recv(t, ctx, r.h.calls, "Invoke"); c.hasDL {
		t.Errorf("an INVOKE without deadline got one: %v", c.deadline)
	}
	r.send(t, ctx, 200, `{"eventType":"SOMETHING_NEW"}`)
	r.send(t, ctx, 200, `not json`)
	r.send(t, ctx, 200, `{"eventType":"SHUTDOWN","shutdownReason":"TIMEOUT","deadlineMs":"soon"}`)
	c := lambdatest.Recv(t, ctx, r.h.calls, "Shutdown")
	if c.kind != Shutdown || !c.hasDL {
		t.Errorf("a SHUTDOWN with an unreadable deadline must still be handled within the default budget: %+v", c)
	}
	if err := lambdatest.Recv(t, ctx, r.done, "Loop to return"); err != nil {
		t.Errorf("Loop returned %v", err)
	}
	logs := r.logs.String()
	for _, want := range []string{"panic: handler bug", "SOMETHING_NEW", "malformed event"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestLoopUnbelievableDeadlines(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"the guide's sample value", `{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":676051}`},
		{"in the past", `{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":` + ms(time.Now().Add(-time.Minute)) + `}`},
		{"longer than the shutdown phase", `{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":` + ms(time.Now().Add(time.Hour)) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			r := startLoop(t, ctx, false)
			sent := time.Now()
			r.send(t, ctx, 200, tt.body)
			c := lambdatest.Recv(t, ctx, r.h.calls, "Shutdown")
			if !c.hasDL || c.deadline.Before(sent) || c.deadline.After(time.Now().Add(maxShutdownPhase)) {
				t.Errorf("handler deadline %v, want the default budget from %v", c.deadline, sent)
			}
			lambdatest.Recv(t, ctx, r.done, "Loop to return")
			if !strings.Contains(r.logs.String(), "ignoring an event deadline") {
				t.Errorf("the unbelievable deadline was not reported: %s", r.logs)
			}
		})
	}
}

// stopDuringShutdown is a handler whose Shutdown waits, so a test can stop the loop's
// context while it runs.
type stopDuringShutdown struct {
	entered, release chan struct{}
	errAfter         chan error
}

func (h *stopDuringShutdown) Invoke(context.Context, *InvokeEvent) error { return nil }

func (h *stopDuringShutdown) Shutdown(ctx context.Context, _ *ShutdownEvent) error {
	close(h.entered)
	<-h.release
	h.errAfter <- ctx.Err()
	return nil
}

// TestLoopShutdownOutlivesStopSignal checks that a local stop signal arriving during
// SHUTDOWN does not cut the handler's work short.
func TestLoopShutdownOutlivesStopSignal(t *testing.T) {
	ctx := testCtx(t)
	api := fakeAPI(t, lambdatest.Options{})
	c := NewClient(api.Addr(), "x", &http.Client{})
	if _, err := c.Register(ctx, []EventType{Shutdown}); err != nil {
		t.Fatal(err)
	}
	h := &stopDuringShutdown{entered: make(chan struct{}), release: make(chan struct{}), errAfter: make(chan error, 1)}
	lctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Loop(lctx, c, h, slog.New(slog.DiscardHandler)) }()
	lambdatest.Recv(t, ctx, api.NextCalls, "event/next")
	if err := api.SendRaw(ctx, 200, []byte(`{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":`+ms(time.Now().Add(2*time.Second))+`}`)); err != nil {
		t.Fatal(err)
	}
	lambdatest.Recv(t, ctx, h.entered, "Shutdown to start")
	cancel()
	close(h.release)
	if err := lambdatest.Recv(t, ctx, h.errAfter, "Shutdown's context state"); err != nil {
		t.Errorf("the stop signal cancelled Shutdown's context: %v", err)
	}
	if err := lambdatest.Recv(t, ctx, done, "Loop to return"); err != nil {
		t.Errorf("Loop returned %v", err)
	}
}

func TestLoopNextFailures(t *testing.T) {
	tests := []struct {
		name       string
		before     int // INVOKE events answered before the failure
		status     int
		wantReport string
	}{
		{"403 during init reports init/error", 0, http.StatusForbidden, "init/error"},
		{"403 after init reports exit/error", 1, http.StatusForbidden, "exit/error"},
		{"500 exits at once without a report", 1, http.StatusInternalServerError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			r := startLoop(t, ctx, false)
			for range tt.before {
				r.send(t, ctx, 200, `{"eventType":"INVOKE","requestId":"r"}`)
				lambdatest.Recv(t, ctx, r.h.calls, "Invoke")
			}
			r.send(t, ctx, tt.status, `{"errorType":"Extension.Test","errorMessage":"refused"}`)
			err := lambdatest.Recv(t, ctx, r.done, "Loop to return")
			if lambdaapi.StatusCode(err) != tt.status {
				t.Fatalf("Loop returned %v, want status %d", err, tt.status)
			}
			select {
			case call := <-r.api.Errors:
				if tt.wantReport == "" {
					t.Errorf("reported %s after a 500", call.Path)
				} else if call.Path != tt.wantReport || call.ErrorType != ErrorTypeNextFailed || !strings.Contains(call.Body["errorMessage"].(string), "refused") {
					t.Errorf("reported %+v, want %s", call, tt.wantReport)
				}
			default:
				if tt.wantReport != "" {
					t.Errorf("no %s reported", tt.wantReport)
				}
			}
		})
	}
}

func TestLoopStopsWithContext(t *testing.T) {
	ctx := testCtx(t)
	r := startLoop(t, ctx, false)
	lambdatest.Recv(t, ctx, r.api.NextCalls, "event/next")
	r.cancel()
	if err := lambdatest.Recv(t, ctx, r.done, "Loop to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Loop returned %v, want context.Canceled", err)
	}
}
