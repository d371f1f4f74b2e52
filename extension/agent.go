package extension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// closeTimeout bounds closing the listener when the loop ended without a SHUTDOWN deadline
// (the process was told to stop).
const closeTimeout = time.Second

// Options wire an extension run.
type Options struct {
	// RuntimeAPI is host:port of the Lambda APIs (AWS_LAMBDA_RUNTIME_API).
	RuntimeAPI string
	// Name is the extension's executable file name, the name it registers with.
	Name string
	// Config is the configuration; ConfigErr the problems found building it, reported once.
	Config    Config
	ConfigErr error
	// Logger receives the extension's own log lines. They reach CloudWatch and, through
	// the extension stream, the extension itself, so nothing logs per event.
	Logger *slog.Logger
	// HTTPClient talks to the Lambda APIs; nil uses one without timeouts, which event/next needs.
	HTTPClient *http.Client
}

// Run registers the extension, starts its telemetry intake and runs the event loop until
// SHUTDOWN has been handled or ctx ends. Only a failure of the Extensions API itself is
// returned: configuration and telemetry problems are logged and the extension carries on
// answering events, so the function is never harmed by it.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if o.RuntimeAPI == "" {
		return errors.New("AWS_LAMBDA_RUNTIME_API is not set: lambda-otel runs as a Lambda extension, started by Lambda or by lambda-emulator")
	}
	client := NewClient(o.RuntimeAPI, o.Name, hc)
	reg, err := client.Register(ctx, []EventType{Invoke, Shutdown}, FeatureAccountID)
	if err != nil {
		return fmt.Errorf("registering extension %q: %w", o.Name, err)
	}
	if o.ConfigErr != nil {
		log.Warn("configuration has errors; the defaults stand in for the bad values", "error", o.ConfigErr.Error())
	}
	a := &agent{log: log, reg: reg}
	a.startTelemetry(ctx, hc, o.RuntimeAPI, client.ID(), o.Config)
	loopErr := Loop(ctx, client, a, log)
	// Normally Shutdown has closed the listener; this covers a loop that ended otherwise.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	return errors.Join(loopErr, a.closeListener(cctx))
}

// agent is the Handler that owns the telemetry intake.
type agent struct {
	log      *slog.Logger
	reg      RegisterResponse
	stats    telemetry.Stats
	buffer   *telemetry.Buffer
	listener *telemetry.Listener
}

// startTelemetry starts the listener and subscribes. A failure leaves the extension
// running without telemetry: it is logged, not returned.
func (a *agent) startTelemetry(ctx context.Context, hc *http.Client, runtimeAPI, id string, cfg Config) {
	if len(cfg.Streams) == 0 {
		a.log.Info("no telemetry types configured; not subscribing")
		return
	}
	a.buffer = telemetry.NewBuffer(cfg.QueueMaxBytes, &a.stats)
	l, err := telemetry.Listen(ctx, telemetry.ListenerConfig{
		Port:         cfg.ListenerPort,
		MaxBodyBytes: telemetry.MaxBodyBytes(cfg.Buffering),
	}, a.buffer, &a.stats)
	if err != nil {
		a.log.Error("telemetry is off: starting the listener failed", "port", cfg.ListenerPort, "error", err.Error())
		return
	}
	res, err := telemetry.Subscribe(ctx, hc, runtimeAPI, id, telemetry.SubscribeRequest{
		SchemaVersion: telemetry.SchemaVersion,
		Types:         cfg.Streams,
		Buffering:     cfg.Buffering,
		Destination:   telemetry.Destination{Protocol: "HTTP", URI: l.URI()},
	})
	if err != nil {
		a.log.Error("telemetry is off: the subscription was refused", "error", err.Error())
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if cerr := l.Close(cctx); cerr != nil {
			a.log.Warn("closing the telemetry listener", "error", cerr.Error())
		}
		return
	}
	if !res.Delivering() {
		a.log.Info("telemetry subscription accepted without a promise of delivery (a local emulator?); carrying on",
			"status", res.StatusCode, "answer", res.Body)
	}
	a.listener = l
}

// Invoke does nothing yet: events accumulate in the bounded buffer until shutdown.
func (a *agent) Invoke(context.Context, *InvokeEvent) error { return nil }

// Shutdown stops the listener, so nothing lands after the drain, then drains the buffer
// and, at debug level, reports what was received.
func (a *agent) Shutdown(ctx context.Context, ev *ShutdownEvent) error {
	err := a.closeListener(ctx)
	if a.buffer == nil {
		return err
	}
	events := a.buffer.Drain(nil)
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("shutdown", "reason", string(ev.Reason), "functionName", a.reg.FunctionName,
			"buffered", len(events), "byType", countByType(events), "counts", summarize(a.stats.Snapshot()))
	}
	return err
}

// closeListener closes the listener once; later calls do nothing.
func (a *agent) closeListener(ctx context.Context) error {
	if a.listener == nil {
		return nil
	}
	l := a.listener
	a.listener = nil
	return l.Close(ctx)
}

func countByType(events []telemetry.Event) map[string]int {
	m := make(map[string]int)
	for _, e := range events {
		m[string(e.Type)]++
	}
	return m
}

// summarize flattens counts into the names the debug line uses.
func summarize(c telemetry.Counts) map[string]uint64 {
	m := map[string]uint64{
		"batches":  c.Batches,
		"events":   c.Events,
		"bytes":    c.Bytes,
		"untyped":  c.Untyped,
		"rejected": c.Rejected,
	}
	for _, r := range telemetry.DropReasons() {
		m["dropped_"+r.String()] = c.Dropped[r]
	}
	return m
}
