// Package otlptest runs the OpenTelemetry Collector's own OTLP receiver in-process on
// loopback, so that exports are tested against the receiver backends actually run.
package otlptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Receiver is a running OTLP receiver that keeps what it is sent.
type Receiver struct {
	// HTTPEndpoint is the base URL of OTLP/HTTP (http://127.0.0.1:port); GRPCEndpoint the
	// host:port of OTLP/gRPC.
	HTTPEndpoint, GRPCEndpoint string

	mu      sync.Mutex
	traces  []ptrace.Traces
	logs    []plog.Logs
	metrics []pmetric.Metrics
	changed chan struct{}
}

// Start runs a receiver for the test's lifetime. Its ports are picked free and then bound,
// so another process may take one in between: Start then tries again with others.
func Start(t testing.TB) *Receiver {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r, comps, err := start(t)
		if err == nil {
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				for _, c := range comps {
					if err := c.Shutdown(sctx); err != nil {
						t.Errorf("stopping the OTLP receiver: %v", err)
					}
				}
			})
			return r
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("starting the OTLP receiver: %v", err)
		}
	}
}

// start creates and starts a receiver on two free ports; on failure, what was started is
// stopped again.
func start(t testing.TB) (*Receiver, []component.Component, error) {
	r := &Receiver{changed: make(chan struct{}, 1)}
	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = httpAddr
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = grpcAddr
	r.HTTPEndpoint, r.GRPCEndpoint = "http://"+httpAddr, grpcAddr

	set := receiver.Settings{
		ID: component.NewID(factory.Type()),
		TelemetrySettings: component.TelemetrySettings{
			Logger:         zap.NewNop(),
			TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider:  metricnoop.NewMeterProvider(),
		},
	}
	ctx := context.Background()
	tc, _ := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		r.keep(func() { r.traces = append(r.traces, td) })
		return nil
	})
	lc, _ := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		r.keep(func() { r.logs = append(r.logs, ld) })
		return nil
	})
	mc, _ := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		r.keep(func() { r.metrics = append(r.metrics, md) })
		return nil
	})
	var comps []component.Component
	for _, create := range []func() (component.Component, error){
		func() (component.Component, error) { return factory.CreateTraces(ctx, set, cfg, tc) },
		func() (component.Component, error) { return factory.CreateLogs(ctx, set, cfg, lc) },
		func() (component.Component, error) { return factory.CreateMetrics(ctx, set, cfg, mc) },
	} {
		c, err := create()
		if err != nil {
			return nil, nil, fmt.Errorf("creating: %w", err)
		}
		comps = append(comps, c)
	}
	// The three signals share one receiver, which serves those created before it starts.
	for i, c := range comps {
		if err := c.Start(ctx, host{}); err != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for _, started := range comps[:i] {
				started.Shutdown(sctx)
			}
			return nil, nil, err
		}
	}
	return r, comps, nil
}

func (r *Receiver) keep(add func()) {
	r.mu.Lock()
	add()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Counts returns how many spans, log records and metric data points were received.
func (r *Receiver) Counts() (spans, logRecords, dataPoints int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, td := range r.traces {
		spans += td.SpanCount()
	}
	for _, ld := range r.logs {
		logRecords += ld.LogRecordCount()
	}
	for _, md := range r.metrics {
		dataPoints += md.DataPointCount()
	}
	return spans, logRecords, dataPoints
}

// Received returns copies of everything received so far, in arrival order.
func (r *Receiver) Received() ([]ptrace.Traces, []plog.Logs, []pmetric.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ptrace.Traces(nil), r.traces...), append([]plog.Logs(nil), r.logs...), append([]pmetric.Metrics(nil), r.metrics...)
}

// WaitFor waits until cond holds or ctx ends, reporting whether it held.
func (r *Receiver) WaitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-r.changed:
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

type host struct{}

func (host) GetExtensions() map[component.ID]component.Component { return nil }
