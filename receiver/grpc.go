package receiver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/grpcwire"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

// grpcServer is the OTLP/gRPC side of a Receiver: net/http's HTTP/2 server with prior
// knowledge over cleartext, which is what a gRPC client sends to an insecure endpoint.
type grpcServer struct {
	srv *http.Server
	lns []net.Listener
	wg  sync.WaitGroup
	// inflight counts the calls being handled; conns the connections open.
	inflight, conns atomic.Int64
}

// serveGRPC serves OTLP/gRPC on lns. Only HTTP/2 is spoken: gRPC needs nothing else.
func (r *Receiver) serveGRPC(lns []net.Listener) *grpcServer {
	g := &grpcServer{lns: lns}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	g.srv = &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.handleGRPC(g, w, req) }),
		Protocols: &protocols,
		ErrorLog:  log.New(io.Discard, "", 0),
		ConnState: g.connState,
	}
	for _, ln := range lns {
		g.wg.Go(func() { _ = g.srv.Serve(ln) })
	}
	return g
}

// connState closes connections over maxConns, which net/http does not bound itself.
func (g *grpcServer) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		if g.conns.Add(1) > maxConns {
			_ = c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		g.conns.Add(-1)
	}
}

func (g *grpcServer) addrs() []net.Addr {
	out := make([]net.Addr, len(g.lns))
	for i, ln := range g.lns {
		out[i] = ln.Addr()
	}
	return out
}

func (g *grpcServer) active() int64 { return g.inflight.Load() }

// close shuts the server down gracefully until ctx ends, then cuts what is left.
func (g *grpcServer) close(ctx context.Context) error {
	err := g.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, g.srv.Close())
	}
	g.wg.Wait()
	return err
}

// handleGRPC answers a unary Export call: the export response and status OK, with a
// partial success when items were refused; RESOURCE_EXHAUSTED with a RetryInfo when the
// buffer is full (which OTLP clients retry); INVALID_ARGUMENT for a message it cannot
// read, RESOURCE_EXHAUSTED without RetryInfo for one over the limit (not retried), and
// UNIMPLEMENTED for another method.
func (r *Receiver) handleGRPC(g *grpcServer, w http.ResponseWriter, req *http.Request) {
	g.inflight.Add(1)
	r.signalChange()
	defer func() {
		g.inflight.Add(-1)
		r.signalChange()
	}()
	defer func() {
		if p := recover(); p != nil {
			r.stats.Fail(telemetry.ReceivePanic)
			writeGRPC(w, nil, codeInternal, "the receiver failed to handle the call", 0)
		}
	}()
	if req.Method != http.MethodPost || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc") {
		r.stats.Fail(telemetry.ReceiveUnsupported)
		http.Error(w, "OTLP/gRPC takes POST with Content-Type application/grpc", http.StatusUnsupportedMediaType)
		return
	}
	sig := signalFor(req.URL.Path)
	if sig == nil {
		r.stats.Fail(telemetry.ReceiveUnsupported)
		writeGRPC(w, nil, codeUnimplemented, "unknown method "+req.URL.Path, 0)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, int64(r.maxBody)+grpcwire.HeaderBytes))
	var msg []byte
	if err == nil {
		msg, err = grpcwire.Message(body, req.Header.Get("Grpc-Encoding"), r.maxBody)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || errors.Is(err, grpcwire.ErrTooLarge):
		r.stats.Fail(telemetry.ReceiveTooLarge)
		writeGRPC(w, nil, codeResourceExhausted, errTooLarge.Error(), 0)
		return
	case err != nil:
		r.stats.Fail(telemetry.ReceiveMalformed)
		writeGRPC(w, nil, codeInvalidArgument, fmt.Sprintf("the call could not be read: %v", err), 0)
		return
	}
	a := r.take(sig, msg, false)
	switch a.outcome {
	case malformed:
		writeGRPC(w, nil, codeInvalidArgument, a.message, 0)
	case full:
		writeGRPC(w, nil, codeResourceExhausted, a.message, retryAfter)
	default:
		writeGRPC(w, grpcwire.Frame(a.response(sig, false), false), codeOK, "", 0)
	}
}

func signalFor(method string) *signal {
	for i := range signals {
		if signals[i].service == method {
			return &signals[i]
		}
	}
	return nil
}

// writeGRPC writes an answer: frame, if any, then the status in the trailers.
func writeGRPC(w http.ResponseWriter, frame []byte, code int, message string, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	if frame != nil {
		_, _ = w.Write(frame)
	}
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(code))
	if message != "" {
		h.Set(http.TrailerPrefix+"Grpc-Message", percentEncode(message))
	}
	if retry > 0 {
		details := statusMessage(code, message, retry, false)
		h.Set(http.TrailerPrefix+"Grpc-Status-Details-Bin", base64.RawStdEncoding.EncodeToString(details))
	}
}

// percentEncode encodes grpc-message as gRPC asks: printable ASCII but '%' as is, every
// other byte as %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
