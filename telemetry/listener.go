package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/lambda-otel/lambda-otel/internal/fastserve"
)

// SandboxHost is the only host name Lambda delivers telemetry to.
const SandboxHost = "sandbox.localdomain"

// envelopeBytes bounds what Lambda adds around each record when it delivers a batch:
// {"time":"2022-08-20T12:31:32.123Z","type":"platform.telemetrySubscription","record":…}.
const envelopeBytes = 128

// DefaultMaxConns is how many connections the listener serves at once unless told
// otherwise: far more than the platform's deliveries to one subscriber need, which come a
// few at a time at most. The bound is what keeps goroutines and read buffers from growing
// with connections that are opened and left silent or half-sent, which nothing else ends:
// the listener sets no read timeout (see Listener).
const DefaultMaxConns = 64

// hostsFile is where SandboxHost is looked up. Lambda lists it there; asking DNS instead
// would put a network round trip (or its timeout) on the cold start, and outside Lambda
// would send the name to whatever resolver the machine has. It is read directly rather
// than through net.Resolver, which would first read resolv.conf and nsswitch.conf too.
const hostsFile = "/etc/hosts"

// MaxBodyBytes is the largest POST body a subscription with buffering b can deliver:
// twice maxBytes plus the per-record envelope, as the Telemetry API documents.
func MaxBodyBytes(b Buffering) int {
	return 2*b.MaxBytes + b.MaxItems*envelopeBytes
}

// ListenerConfig says where the listener binds and how large a POST it takes.
type ListenerConfig struct {
	// Host to bind. Empty means SandboxHost when /etc/hosts lists it, else 127.0.0.1.
	Host string
	// Port to bind; 0 picks a free one.
	Port int
	// MaxBodyBytes caps a POST body; larger ones are answered 413 and counted.
	MaxBodyBytes int
	// MaxConns caps the connections served at once; 0 means DefaultMaxConns. One more is
	// answered 503 and closed at once, which the platform retries.
	MaxConns int
}

// Listener is the HTTP endpoint the platform posts batches to. It answers every POST it can
// read with 200 at once, even a malformed batch, which is counted and dropped: the platform
// retries failed deliveries, and a retry would not mend it. A body over the size limit is
// answered 413 and counted; other methods get 405. The path and the Content-Type are not
// checked: the subscription chose the one, and the body decides the other. It never logs
// per request (its own log lines would come back to it as extension records) and recovers
// from any panic while handling one.
//
// It does not deduplicate. The platform redelivers a batch whose POST it believes failed,
// which, since the listener answers at once, should only happen when the answer is lost
// with its connection; but events
// carry no identity: a redelivery cannot be told from a function writing the same line
// twice in a millisecond. Every delivery's events are kept and counted (Batches, Events),
// so a redelivered batch is exported twice: its log lines repeat, and an invocation whose
// platform.report it held gets a second span.
//
// It sets no read or idle timeout: a frozen environment wakes past such deadlines, which
// would cut the platform's kept-alive connections, or a delivery in progress, after every
// thaw. The number of connections served at once is bounded instead (MaxConns), and Close
// bounds its own wait.
type Listener struct {
	server *fastserve.Server
	uri    string
	buf    *Buffer
	stats  *Stats
	pool   sync.Pool
}

// Listen binds the listener and starts serving; stop it with Close.
func Listen(ctx context.Context, cfg ListenerConfig, buf *Buffer, stats *Stats) (*Listener, error) {
	bindHost, uriHost := cfg.Host, cfg.Host
	if bindHost == "" {
		bindHost, uriHost = resolveSandbox()
	}
	// Telemetry holds the function's logs: it must not be offered to the network.
	ip := net.ParseIP(bindHost)
	if ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("telemetry listener: refusing to bind %s, every interface; want the sandbox's address", bindHost)
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	// An address's own family spares the net package its probe of the IPv6 stack.
	network := "tcp"
	switch {
	case ip.To4() != nil:
		network = "tcp4"
	case ip != nil:
		network = "tcp6"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, net.JoinHostPort(bindHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("telemetry listener: %w", err)
	}
	l := newListener(buf, stats)
	srv := &fasthttp.Server{
		Handler:                       l.handle,
		ErrorHandler:                  l.handleError,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		Concurrency:                   maxConns,
		Logger:                        nopLogger{},
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true, // else fasthttp starts a process-wide ticker goroutine
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
	}
	l.server = fastserve.New(srv, fastserve.Hooks{
		AcceptError: func() { l.stats.acceptErrors.Add(1) },
		// Over MaxConns, fasthttp answers 503 and closes: count it as a refusal.
		Refused: func() { l.stats.rejected.Add(1) },
	})
	port := ln.Addr().(*net.TCPAddr).Port
	l.uri = "http://" + net.JoinHostPort(uriHost, strconv.Itoa(port)) + "/"
	l.server.Serve(ln)
	return l, nil
}

// newListener returns a listener that can handle requests but is not serving.
func newListener(buf *Buffer, stats *Stats) *Listener {
	l := &Listener{buf: buf, stats: stats}
	l.pool.New = func() any { return new([]Event) }
	return l
}

// URI is the destination to subscribe with.
func (l *Listener) URI() string { return l.uri }

// Close stops accepting batches and waits, until ctx ends, for requests in flight; then it
// cuts whatever connections remain. A connection that is open but silent counts as in
// flight, so give ctx only the time a delivery may still need.
func (l *Listener) Close(ctx context.Context) error {
	if err := l.server.Close(ctx); err != nil {
		return fmt.Errorf("closing telemetry listener: %w", err)
	}
	return nil
}

func (l *Listener) handle(rc *fasthttp.RequestCtx) {
	body := rc.PostBody()
	defer func() {
		if r := recover(); r != nil {
			l.stats.Drop(DropListenerPanic, 1, len(body))
			rc.ResetBody()
			rc.SetStatusCode(fasthttp.StatusOK)
		}
	}()
	if !rc.IsPost() {
		l.stats.rejected.Add(1)
		rc.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	l.ingest(body)
	rc.SetStatusCode(fasthttp.StatusOK)
}

// ingest decodes one batch into the buffer and counts what happened to it.
func (l *Listener) ingest(body []byte) {
	l.stats.batches.Add(1)
	l.stats.bytes.Add(uint64(len(body)))
	p := l.pool.Get().(*[]Event)
	events, err := DecodeBatch((*p)[:0], body)
	if err != nil {
		used := 0
		for _, e := range events {
			used += e.Size
		}
		l.stats.Drop(DropMalformedBatch, 1, max(len(body)-used, 0))
	}
	l.stats.events.Add(uint64(len(events)))
	for _, e := range events {
		if _, ok := e.Record.(*Raw); ok {
			l.stats.untyped.Add(1)
		}
	}
	l.buf.Add(events...)
	clear(events)
	*p = events[:0]
	l.pool.Put(p)
}

// handleError answers requests fasthttp could not read: an oversized body with 413, anything
// else (a broken request, a connection cut mid-body) with 400. Both are counted as drops.
func (l *Listener) handleError(rc *fasthttp.RequestCtx, err error) {
	l.stats.rejected.Add(1)
	// The declared length. A chunked body's size is unknown (negative), and fasthttp has
	// forgotten the headers of a body cut short: both count as 0.
	size := max(rc.Request.Header.ContentLength(), 0)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		l.stats.Drop(DropBodyTooLarge, 1, size)
		rc.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		return
	}
	l.stats.Drop(DropReadError, 1, size)
	rc.SetStatusCode(fasthttp.StatusBadRequest)
}

// resolveSandbox returns the address to bind and the host name to publish.
func resolveSandbox() (bindHost, uriHost string) {
	b, err := os.ReadFile(hostsFile)
	if err != nil {
		b = nil
	}
	return sandboxAddr(hostAddrs(b, SandboxHost))
}

// hostAddrs lists the addresses a hosts file gives name, in its order: lines of an address
// and its names, # starting a comment, names matched in any letter case.
func hostAddrs(hosts []byte, name string) []string {
	var addrs []string
	for line := range strings.Lines(string(hosts)) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, n := range f[1:] {
			if strings.EqualFold(n, name) {
				addrs = append(addrs, f[0])
				break
			}
		}
	}
	return addrs
}

// sandboxAddr picks the address to bind among those /etc/hosts gives the sandbox name: the
// first that is one machine address, not every interface (0.0.0.0 or ::). Without one,
// the listener binds loopback and publishes it, which local emulators deliver to.
func sandboxAddr(addrs []string) (bindHost, uriHost string) {
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && !ip.IsUnspecified() {
			return a, SandboxHost
		}
	}
	return "127.0.0.1", "127.0.0.1"
}

// nopLogger silences fasthttp: a line it printed would come back as an extension record.
type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
