package extension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/lambdaapi"
)

// Handler is what the rest of the extension plugs into the event loop. Each call's context
// ends at the event's deadline; the loop calls event/next again only when the call returns,
// and the environment may be frozen right after, so work for the event must be done by then.
type Handler interface {
	// Invoke is called at the start of each invocation.
	Invoke(ctx context.Context, ev *InvokeEvent) error
	// Shutdown is called once, last; its context ends shortly before the shutdown deadline.
	Shutdown(ctx context.Context, ev *ShutdownEvent) error
}

// shutdownMargin is kept back from the shutdown deadline for the process to exit after the
// handler returns: past the deadline Lambda kills it.
const shutdownMargin = 20 * time.Millisecond

// maxShutdownPhase is the longest shutdown phase Lambda grants (with external extensions).
// A SHUTDOWN deadline further out is not believed.
const maxShutdownPhase = 2000 * time.Millisecond

// defaultShutdownBudget applies when a SHUTDOWN carries no believable deadline; it is what
// external extensions are usually left of the 2,000 ms phase.
const defaultShutdownBudget = 1500 * time.Millisecond

// maxInvokePhase bounds a believable INVOKE deadline: the longest function timeout (900 s)
// with room for clock skew.
const maxInvokePhase = 16 * time.Minute

// nextRetries are the pauses before retrying an event/next that failed without an answer,
// such as a connection reset: the API is local, so anything longer means it is gone.
var nextRetries = []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

// Error types reported to init/error and exit/error.
const (
	ErrorTypeNextFailed = "Extension.NextFailed"
)

// Loop calls event/next and hands each event to h until SHUTDOWN has been handled, which
// returns nil, or until ctx ends. A handler's error or panic is logged and the loop goes on:
// the extension must never fail the function. When event/next itself fails, Loop reports
// it with init/error (before the first event) or exit/error and returns the error; after a
// 500 answer it returns at once, as the API demands.
func Loop(ctx context.Context, c *Client, h Handler, log *slog.Logger) error {
	initDone := false
	for {
		ev, err := nextWithRetry(ctx, c)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errMalformedEvent):
			log.Warn("reading an event", "error", err)
		default:
			return fail(ctx, c, initDone, err)
		}
		initDone = true
		switch ev.Type {
		case Invoke:
			hctx, cancel := eventContext(ctx, log, ev.Invoke.DeadlineMs, 0, maxInvokePhase, 0)
			if err := call(func() error { return h.Invoke(hctx, ev.Invoke) }); err != nil {
				log.Warn("handling INVOKE", "requestId", ev.Invoke.RequestID, "error", err)
			}
			cancel()
		case Shutdown:
			// The last work of the extension must not be cut short by a local stop signal:
			// only the deadline ends it.
			hctx, cancel := eventContext(context.WithoutCancel(ctx), log, ev.Shutdown.DeadlineMs, shutdownMargin, maxShutdownPhase, defaultShutdownBudget)
			defer cancel()
			if err := call(func() error { return h.Shutdown(hctx, ev.Shutdown) }); err != nil {
				log.Warn("handling SHUTDOWN", "reason", ev.Shutdown.Reason, "error", err)
			}
			return nil
		default:
			log.Debug("ignoring an event of unknown type", "eventType", ev.Type)
		}
	}
}

// nextWithRetry retries event/next only when it got no answer at all.
func nextWithRetry(ctx context.Context, c *Client) (Event, error) {
	for attempt := 0; ; attempt++ {
		ev, err := c.Next(ctx)
		if err == nil || lambdaapi.StatusCode(err) != 0 || errors.Is(err, errMalformedEvent) || attempt == len(nextRetries) {
			return ev, err
		}
		t := time.NewTimer(nextRetries[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			return Event{}, ctx.Err()
		case <-t.C:
		}
	}
}

// fail reports a failed event/next and returns the error to exit with.
func fail(ctx context.Context, c *Client, initDone bool, err error) error {
	err = fmt.Errorf("waiting for the next event: %w", err)
	if lambdaapi.StatusCode(err) == http.StatusInternalServerError {
		return err
	}
	report, what := c.ExitError, "exit/error"
	if !initDone {
		report, what = c.InitError, "init/error"
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if rerr := report(rctx, ErrorTypeNextFailed, ErrorRequest{ErrorMessage: err.Error()}); rerr != nil {
		return errors.Join(err, fmt.Errorf("reporting %s: %w", what, rerr))
	}
	return err
}

// eventContext derives a handler's context: it ends margin before the event's deadline when
// that deadline lies between now and now+limit; otherwise (missing, past, or too far, as
// when a sender writes remaining milliseconds or seconds) after fallback, or never when
// fallback is 0.
func eventContext(ctx context.Context, log *slog.Logger, deadline EpochMillis, margin, limit, fallback time.Duration) (context.Context, context.CancelFunc) {
	now := time.Now()
	if dl := deadline.Time(); dl.After(now) && !dl.After(now.Add(limit)) {
		return context.WithDeadline(ctx, dl.Add(-margin))
	}
	if deadline != 0 {
		log.Warn("ignoring an event deadline that is not a time in the next "+limit.String(), "deadlineMs", int64(deadline))
	}
	if fallback > 0 {
		return context.WithTimeout(ctx, fallback)
	}
	return context.WithCancel(ctx)
}

// call runs f, turning a panic into an error so that no bug of a handler ends the loop.
func call(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}
