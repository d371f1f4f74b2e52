// Package receiver is the extension's local OTLP endpoint: the OpenTelemetry SDK in the
// function sends its own spans, logs and metrics to it over OTLP/HTTP (protobuf or JSON,
// on localhost:4318) or OTLP/gRPC (on localhost:4317). What it takes goes into the same
// bounded buffer as the platform's telemetry, to be joined to the invocations and flushed
// on the same schedule, so that nothing waits in the function's process when the
// environment is frozen.
//
// It binds loopback only: the data is the function's, and so is every sender.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// Default ports of OTLP.
const (
	DefaultHTTPPort = 4318
	DefaultGRPCPort = 4317
)

// DefaultMaxBodyBytes bounds a request, compressed and uncompressed. An SDK's batch
// (512 spans by default) is a few hundred kilobytes at most; gRPC's own default limit
// for a received message is 4 MiB.
const DefaultMaxBodyBytes = 4 << 20

// maxConns bounds the connections served at once, per protocol: an SDK uses one or two.
const maxConns = 32

// loopbackHosts are bound by default. An SDK's default endpoint, localhost, resolves to
// either, and some runtimes try only the first address they get.
var loopbackHosts = []string{"127.0.0.1", "::1"}

// Config says what the receiver serves.
type Config struct {
	// HTTP and GRPC turn each protocol on.
	HTTP, GRPC bool
	// HTTPPort and GRPCPort are their ports; 0 picks a free one.
	HTTPPort, GRPCPort int
	// MaxBodyBytes bounds a request; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Hosts to bind, each a loopback address; empty means 127.0.0.1 and, where the
	// machine has it, ::1.
	Hosts []string
}

// Receiver serves OTLP on loopback into a telemetry.Buffer.
type Receiver struct {
	buf     *telemetry.Buffer
	stats   *telemetry.Stats
	maxBody int
	http    *httpServer
	grpc    *grpcServer
	// changed receives when a request begins or ends.
	changed chan struct{}
}

// Start binds what cfg asks for and starts serving. It returns an error when nothing
// could be bound; a protocol that could not be bound while the other was is reported in
// the error too, with the receiver still returned.
func Start(ctx context.Context, cfg Config, buf *telemetry.Buffer, stats *telemetry.Stats) (*Receiver, error) {
	r := &Receiver{buf: buf, stats: stats, maxBody: cfg.MaxBodyBytes, changed: make(chan struct{}, 1)}
	if r.maxBody <= 0 {
		r.maxBody = DefaultMaxBodyBytes
	}
	var errs []error
	if cfg.HTTP {
		lns, err := listen(ctx, cfg.Hosts, cfg.HTTPPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("OTLP/HTTP receiver: %w", err))
		} else {
			r.http = r.serveHTTP(lns)
		}
	}
	if cfg.GRPC {
		lns, err := listen(ctx, cfg.Hosts, cfg.GRPCPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("OTLP/gRPC receiver: %w", err))
		} else {
			r.grpc = r.serveGRPC(lns)
		}
	}
	err := errors.Join(errs...)
	if r.http == nil && r.grpc == nil {
		return nil, err
	}
	return r, err
}

// listen binds port on each host. The first host must succeed; the default's others are
// extras (::1 on a machine without IPv6) whose failure is not an error.
func listen(ctx context.Context, hosts []string, port int) ([]net.Listener, error) {
	explicit := len(hosts) > 0
	if !explicit {
		hosts = loopbackHosts
	}
	var lc net.ListenConfig
	var lns []net.Listener
	for i, h := range hosts {
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			closeAll(lns)
			return nil, fmt.Errorf("refusing to bind %q: the receiver binds loopback addresses only", h)
		}
		network := "tcp6"
		if ip.To4() != nil {
			network = "tcp4"
		}
		ln, err := lc.Listen(ctx, network, net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			if i == 0 || explicit {
				closeAll(lns)
				return nil, err
			}
			continue
		}
		lns = append(lns, ln)
		// A free port picked for the first address is the port of the others too.
		port = ln.Addr().(*net.TCPAddr).Port
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// Addrs returns the addresses served, OTLP/HTTP's first.
func (r *Receiver) Addrs() []net.Addr {
	var out []net.Addr
	if r.http != nil {
		out = append(out, r.http.server.Addrs()...)
	}
	if r.grpc != nil {
		out = append(out, r.grpc.addrs()...)
	}
	return out
}

// HTTPAddr and GRPCAddr return the first address of each protocol, nil when it is off.
func (r *Receiver) HTTPAddr() net.Addr {
	if r.http == nil {
		return nil
	}
	return r.http.server.Addrs()[0]
}

// GRPCAddr returns the first OTLP/gRPC address, nil when it is off.
func (r *Receiver) GRPCAddr() net.Addr {
	if r.grpc == nil {
		return nil
	}
	return r.grpc.addrs()[0]
}

// Busy reports whether a request is being received or answered: its data is on its way
// to the buffer.
func (r *Receiver) Busy() bool {
	return r.http != nil && r.http.server.Active() > 0 || r.grpc != nil && r.grpc.active() > 0
}

// Changed returns a channel that receives after a request of either protocol began or
// was answered. Changes while nobody waits fold into one: check Busy, then wait.
func (r *Receiver) Changed() <-chan struct{} { return r.changed }

func (r *Receiver) signalChange() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Close stops both protocols, waiting until ctx ends for requests in flight.
func (r *Receiver) Close(ctx context.Context) error {
	var wg sync.WaitGroup
	var herr, gerr error
	if r.http != nil {
		wg.Go(func() { herr = r.http.server.Close(ctx) })
	}
	if r.grpc != nil {
		wg.Go(func() { gerr = r.grpc.close(ctx) })
	}
	wg.Wait()
	if err := errors.Join(herr, gerr); err != nil {
		return fmt.Errorf("closing the OTLP receiver: %w", err)
	}
	return nil
}
