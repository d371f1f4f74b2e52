package extension

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/receiver"
	"github.com/lambda-otel/lambda-otel/telemetry"
	"github.com/lambda-otel/lambda-otel/telemetry/convert"
)

// Bounds of the agent's waits.
const (
	// closeTimeout bounds closing the listener: deliveries still on the wire need far less.
	closeTimeout = 100 * time.Millisecond
	// initCallTimeout bounds register and subscribe, so that a hung API cannot hold the
	// environment's init until Lambda's 10 s limit.
	initCallTimeout = 2 * time.Second
	// finalQuietMargin is added to the platform's batching timeout to decide, at shutdown,
	// that no more telemetry is on its way.
	finalQuietMargin = 50 * time.Millisecond
	// maxFinalWait caps the wait for the last telemetry at shutdown, whatever the
	// deadline, leaving the rest of the shutdown phase for flushing.
	maxFinalWait = 500 * time.Millisecond
)

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
	// HTTPClient talks to the Lambda APIs; nil uses one without timeouts (which event/next
	// needs) and without proxies (the APIs are local whatever HTTP_PROXY the function sets).
	HTTPClient *http.Client
	// Version is the extension's version, reported as telemetry.sdk.version.
	Version string
	// Console receives the console exporter's summaries; nil is stderr.
	Console io.Writer
	// Clock tells the flush strategies the time; nil is time.Now.
	Clock func() time.Time
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
	if o.RuntimeAPI == "" {
		return errors.New("AWS_LAMBDA_RUNTIME_API is not set: lambda-otel runs as a Lambda extension, started by Lambda or by lambda-emulator")
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	client := NewClient(o.RuntimeAPI, o.Name, hc)
	a := &agent{log: log, cfg: o.Config, pending: newOutstanding()}
	// The registration's round trip overlaps binding the telemetry listener, which needs
	// no identifier: both are on the cold start.
	type registered struct {
		reg RegisterResponse
		err error
	}
	regc := make(chan registered, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, initCallTimeout)
		defer cancel()
		reg, err := client.Register(rctx, []EventType{Invoke, Shutdown}, FeatureAccountID)
		regc <- registered{reg, err}
	}()
	a.buffer = telemetry.NewBuffer(o.Config.QueueMaxBytes, &a.stats)
	l := a.listen(ctx)
	a.receiver = a.receive(ctx)
	r := <-regc
	if r.err != nil {
		a.closeListener(ctx, l)
		a.closeReceiver(ctx)
		return fmt.Errorf("registering extension %q: %w", o.Name, r.err)
	}
	reg := r.reg
	if o.ConfigErr != nil {
		log.Warn("configuration has errors; the defaults stand in for the bad values", "error", o.ConfigErr.Error())
	}
	res := o.Config.Resource
	res.FunctionName = cmp.Or(reg.FunctionName, res.FunctionName)
	res.FunctionVersion = cmp.Or(reg.FunctionVersion, res.FunctionVersion)
	res.AccountID = reg.AccountID
	res.Version = o.Version
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	console := o.Console
	if console == nil {
		console = os.Stderr
	}
	exps, err := exporters.New(o.Config.Export, console)
	if err != nil {
		log.Error("an exporter could not start; the others carry on", "error", err.Error())
	}
	a.reg, a.exporting = reg, len(exps) > 0
	a.conv = convert.New(convert.Options{Config: o.Config.Convert, Resource: res, Start: time.Now()})
	a.flusher = &flusher{
		cfg:   flushFor(o.Config),
		limit: time.Duration(o.Config.FlushTimeoutMs) * time.Millisecond,
		queue: exporters.NewQueue(exps, o.Config.QueueMaxBytes, log),
		now:   clock,
		last:  clock(),
	}
	a.subscribe(ctx, hc, o.RuntimeAPI, client.ID(), l)
	loopErr := Loop(ctx, client, a, log)
	if a.stopped {
		return loopErr
	}
	// The loop ended without SHUTDOWN (a local stop): close and export what is held.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout+a.flusher.limit)
	defer cancel()
	return errors.Join(loopErr, a.stop(cctx, ""))
}

// flushFor is the configured strategy, except that without the platform stream no
// platform.runtimeDone will ever mark an invocation's end: periodic flushing stands in.
func flushFor(c Config) Flush {
	if !slices.Contains(c.Streams, telemetry.StreamPlatform) && (c.Flush.Mode == FlushEnd || c.Flush.Mode == FlushAdaptive) {
		return Flush{Mode: FlushPeriodic, Period: adaptivePeriod}
	}
	return c.Flush
}

// agent is the Handler that owns the telemetry intake.
type agent struct {
	log      *slog.Logger
	reg      RegisterResponse
	cfg      Config
	stats    telemetry.Stats
	buffer   *telemetry.Buffer
	listener *telemetry.Listener
	receiver *receiver.Receiver
	// received is the scratch space of the received requests being converted.
	received []telemetry.Received
	conv     *convert.Converter
	flusher  *flusher
	// exporting is false when no exporter is configured.
	exporting bool
	// lastRequest is the request id of the latest INVOKE, whose report comes after it ends.
	lastRequest string
	// pending follows the INVOKEs whose platform events are not yet converted.
	pending outstanding
	// stopped is set once the intake has been stopped and its events accounted for.
	stopped bool
}

// listen starts the telemetry listener; nil when no stream is wanted or the listener
// could not start, which leaves the extension running without platform telemetry.
func (a *agent) listen(ctx context.Context) *telemetry.Listener {
	cfg := a.cfg
	if len(cfg.Streams) == 0 {
		a.log.Info("no telemetry types configured; not subscribing")
		return nil
	}
	l, err := telemetry.Listen(ctx, telemetry.ListenerConfig{
		Port:         cfg.ListenerPort,
		MaxBodyBytes: telemetry.MaxBodyBytes(cfg.Buffering),
	}, a.buffer, &a.stats)
	if err != nil {
		a.log.Error("telemetry is off: starting the listener failed", "port", cfg.ListenerPort, "error", err.Error())
		return nil
	}
	return l
}

// receive starts the local OTLP receiver; nil when it is off or could not start, which
// leaves the function's SDK without a local endpoint but the extension running. A
// protocol whose port an OTLP exporter sends to on loopback is left off, or the
// extension would receive its own exports, forever.
func (a *agent) receive(ctx context.Context) *receiver.Receiver {
	cfg := a.cfg.Receiver
	for _, port := range loopbackExportPorts(a.cfg.Export) {
		if cfg.HTTP && cfg.HTTPPort == port {
			cfg.HTTP = false
			a.log.Warn("the OTLP/HTTP receiver is off: the OTLP exporter sends to its port on this machine; set the exporter's endpoint to the backend, or "+EnvReceiver+" to another port", "port", port)
		}
		if cfg.GRPC && cfg.GRPCPort == port {
			cfg.GRPC = false
			a.log.Warn("the OTLP/gRPC receiver is off: the OTLP exporter sends to its port on this machine; set the exporter's endpoint to the backend, or "+EnvReceiver+" to another port", "port", port)
		}
	}
	if !cfg.HTTP && !cfg.GRPC {
		return nil
	}
	cfg.MaxBodyBytes = min(receiver.DefaultMaxBodyBytes, a.cfg.QueueMaxBytes)
	r, err := receiver.Start(ctx, cfg, a.buffer, &a.stats)
	if err != nil {
		a.log.Error("the local OTLP receiver could not start (fully or in part)", "error", err.Error())
	}
	return r
}

// loopbackExportPorts returns the ports the OTLP exporter sends to on this machine.
func loopbackExportPorts(c exporters.Config) []int {
	if !slices.Contains(c.Exporters, exporters.NameOTLP) {
		return nil
	}
	var ports []int
	for _, t := range c.OTLP {
		u, err := url.Parse(t.URL)
		if err != nil {
			continue
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			continue
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			ports = append(ports, p)
		}
	}
	return ports
}

// intake reports whether any telemetry can arrive: from the platform or the function.
func (a *agent) intake() bool { return a.listener != nil || a.receiver != nil }

// closeReceiver closes the receiver, giving requests in flight closeTimeout.
func (a *agent) closeReceiver(ctx context.Context) error {
	if a.receiver == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	return a.receiver.Close(cctx)
}

// subscribe subscribes the listener l to the configured streams. A refusal leaves the
// extension running without platform telemetry: it is logged, not returned.
func (a *agent) subscribe(ctx context.Context, hc *http.Client, runtimeAPI, id string, l *telemetry.Listener) {
	if l == nil {
		return
	}
	cfg := a.cfg
	sctx, cancel := context.WithTimeout(ctx, initCallTimeout)
	defer cancel()
	res, err := telemetry.Subscribe(sctx, hc, runtimeAPI, id, telemetry.SubscribeRequest{
		SchemaVersion: telemetry.SchemaVersion,
		Types:         cfg.Streams,
		Buffering:     cfg.Buffering,
		Destination:   telemetry.Destination{Protocol: "HTTP", URI: l.URI()},
	})
	if err != nil {
		a.log.Error("telemetry is off: the subscription was refused", "error", err.Error())
		a.closeListener(ctx, l)
		return
	}
	if !res.Delivering() {
		a.log.Info("telemetry subscription accepted without a promise of delivery (a local emulator?); carrying on",
			"status", res.StatusCode, "answer", res.Body)
	}
	a.listener = l
}

// closeListener closes a listener that will not be used; nil is nothing to close.
func (a *agent) closeListener(ctx context.Context, l *telemetry.Listener) {
	if l == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		a.log.Warn("closing the telemetry listener", "error", err.Error())
	}
}

// Invoke notes the invocation; its telemetry stays in the bounded buffer.
func (a *agent) Invoke(ctx context.Context, ev *InvokeEvent) error {
	a.lastRequest = ev.RequestID
	a.pending.invoked(ev.RequestID)
	inv := convert.Invocation{RequestID: ev.RequestID, FunctionARN: ev.InvokedFunctionArn}
	if ev.Tracing != nil {
		inv.TraceHeader = ev.Tracing.Value
	}
	inv.At = time.Now()
	a.conv.Invoked(inv)
	if a.intake() && a.exporting {
		a.onInvoke(ctx, ev.RequestID)
	}
	return nil
}

// Shutdown stops the intake once the last telemetry is in, then exports everything.
func (a *agent) Shutdown(ctx context.Context, ev *ShutdownEvent) error {
	return a.stop(ctx, string(ev.Reason))
}

// stop waits for the telemetry still on its way, closes the listener, converts every
// event held, including the phases that will not complete, and exports it all before
// ctx's deadline less a margin. What could not be sent is counted as dropped.
func (a *agent) stop(ctx context.Context, reason string) error {
	began := time.Now()
	a.stopped = true
	fctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, dl.Add(-closeMargin))
		defer cancel()
	}
	var err error
	var events []telemetry.Event
	if a.intake() {
		ship := a.shipper(fctx, true)
		if a.listener != nil {
			events = a.awaitFinal(ctx, ship)
		}
		// The runtime may still be flushing its SDK from its SIGTERM handler: the
		// receiver takes what is on its way before it closes.
		var wg sync.WaitGroup
		var rerr error
		wg.Go(func() { rerr = a.closeReceiver(ctx) })
		if a.listener != nil {
			cctx, cancel := context.WithTimeout(ctx, closeTimeout)
			err = a.listener.Close(cctx)
			cancel()
		}
		wg.Wait()
		err = errors.Join(err, rerr)
		events = a.convertBuffered(events, ship)
	}
	a.conv.Shutdown(time.Now(), reason)
	if !a.exporting {
		size := 0
		for _, e := range events {
			size += e.Size
		}
		a.stats.Drop(telemetry.DropNoExporter, len(events), size)
	}
	a.enqueue()
	q := a.flusher.queue
	if ferr := q.Flush(fctx); ferr != nil {
		a.log.Warn("the last export was incomplete", "error", ferr.Error())
	}
	q.DropPending(exporters.OutcomeShutdown)
	err = errors.Join(err, q.Close(ctx))
	a.logIntakeDrops()
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("shutdown", "reason", reason, "functionName", a.reg.FunctionName,
			"buffered", len(events), "byType", countByType(events), "counts", summarize(a.stats.Snapshot()),
			"exports", q.Counts(), "shutdownMs", time.Since(began).Milliseconds())
	}
	return err
}

// logIntakeDrops warns, once at shutdown, of the telemetry the extension dropped before
// export (a full buffer, deliveries it could not read), by reason: its metric may never
// reach a backend that is down, and the log line is then the only record.
func (a *agent) logIntakeDrops() {
	c := a.stats.Snapshot()
	for _, r := range telemetry.DropReasons() {
		if c.Dropped[r] == 0 {
			continue
		}
		unit := "events"
		if r.CountsBatches() {
			unit = "batches"
		}
		a.log.Warn("telemetry dropped before export", "reason", r.String(), unit, c.Dropped[r], "bytes", c.DroppedBytes[r])
	}
}

// awaitFinal converts the telemetry that follows the last invocation as it arrives. The
// platform sends the last platform.report only after every extension has finished that
// invocation, so it arrives after SHUTDOWN: wait until it is in, or nothing has arrived for
// a batching period, or the wait's cap is reached.
func (a *agent) awaitFinal(ctx context.Context, ship func()) []telemetry.Event {
	limit := maxFinalWait
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)/2)
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	quietFor := time.Duration(a.cfg.Buffering.TimeoutMs)*time.Millisecond + finalQuietMargin
	return a.await(cctx, nil, quietFor, ship, func(e *telemetry.Event) bool {
		r, ok := e.Record.(*telemetry.Report)
		return ok && a.lastRequest != "" && r.RequestID == a.lastRequest && a.pending.reportIn(r.RequestID)
	})
}

// await converts telemetry as it arrives, appending the events to dst, until one satisfies
// done, nothing has arrived for quietFor (when it is not zero), or ctx ends. ship is
// convertBuffered's.
func (a *agent) await(ctx context.Context, dst []telemetry.Event, quietFor time.Duration, ship func(), done func(*telemetry.Event) bool) []telemetry.Event {
	var quiet *time.Timer
	var quietC <-chan time.Time // nil, never ready, without a quiet period
	if quietFor > 0 {
		quiet = time.NewTimer(quietFor)
		defer quiet.Stop()
		quietC = quiet.C
	}
	for {
		n := len(dst)
		dst = a.convertBuffered(dst, ship)
		for i := n; i < len(dst); i++ {
			if done(&dst[i]) {
				return dst
			}
		}
		if len(dst) > n && quiet != nil {
			quiet.Reset(quietFor)
		}
		select {
		case <-a.buffer.Added():
		case <-quietC:
			return dst
		case <-ctx.Done():
			return dst
		}
	}
}

// convertBuffered drains the buffer into the converter, appending the events to dst. A
// backlog is converted chunkEvents at a time, with ship called between the chunks. What
// the function's SDK sent to the receiver is converted with them.
func (a *agent) convertBuffered(dst []telemetry.Event, ship func()) []telemetry.Event {
	a.received = a.buffer.DrainReceived(a.received[:0])
	if len(a.received) > 0 {
		if !a.exporting {
			// With nowhere to send them, their items are dropped as the events are.
			for _, r := range a.received {
				a.stats.Drop(telemetry.DropNoExporter, r.Items, r.Size)
			}
		}
		a.conv.AddReceived(a.received)
		clear(a.received)
	}
	n := len(dst)
	dst = a.buffer.Drain(dst)
	for i := n; i < len(dst); i += chunkEvents {
		if i > n {
			ship()
		}
		a.conv.Add(dst[i:min(i+chunkEvents, len(dst))])
	}
	a.pending.converted(dst[n:])
	return dst
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
