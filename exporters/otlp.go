package exporters

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/lambda-otel/lambda-otel/internal/grpcwire"
)

// Protocol is an OTLP transport.
type Protocol string

// The OTLP protocols of OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	HTTPProtobuf Protocol = "http/protobuf"
	HTTPJSON     Protocol = "http/json"
	GRPC         Protocol = "grpc"
)

// Retry timing. The first retry comes quickly, since most failures after a freeze are a
// dead connection or a backend waking up; later ones back off to spare an overloaded
// backend.
const (
	initialBackoff = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
	// minAttempt is the least time worth starting an attempt with.
	minAttempt = 20 * time.Millisecond
	// maxResponseBytes bounds what is read of an answer.
	maxResponseBytes = 64 << 10
)

// Target is where and how one signal is sent.
type Target struct {
	Protocol Protocol
	// URL is the full URL of an OTLP/HTTP signal (…/v1/traces), or the base URL of an
	// OTLP/gRPC server (http://host:port for plaintext, https:// for TLS).
	URL string
	// Headers are sent with every request. Their values are secrets and never logged.
	Headers map[string]string
	Gzip    bool
	// Timeout bounds one attempt.
	Timeout time.Duration
	// TLS configures https URLs; nil uses the system's roots.
	TLS *tls.Config
}

// OTLP is the exporter to an OTLP backend, one Target per signal.
type OTLP struct {
	targets [numSignals]*sender
}

// sender sends one signal to its target.
type sender struct {
	Target
	client *http.Client
}

// NewOTLP returns an exporter for the targets, indexed by Signal. Signals that share a
// transport (protocol family and TLS settings) share connections, so one backend costs
// one connection at cold start.
func NewOTLP(targets [numSignals]Target) *OTLP {
	e := &OTLP{}
	clients := map[string]*http.Client{}
	for i, t := range targets {
		key := fmt.Sprintf("%v|%p", t.Protocol == GRPC, t.TLS)
		c, ok := clients[key]
		if !ok {
			c = &http.Client{Transport: newTransport(t)}
			clients[key] = c
		}
		e.targets[i] = &sender{Target: t, client: c}
	}
	return e
}

// newTransport returns HTTP/1.1 with HTTP/2 when TLS offers it for OTLP/HTTP, and HTTP/2
// only, with or without TLS, for gRPC.
func newTransport(t Target) *http.Transport {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     t.TLS,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if t.Protocol == GRPC {
		p := new(http.Protocols)
		if strings.HasPrefix(t.URL, "https://") {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		tr.Protocols = p
	}
	return tr
}

// Name is "otlp".
func (e *OTLP) Name() string { return "otlp" }

// Close closes idle connections.
func (e *OTLP) Close(context.Context) error {
	for _, s := range e.targets {
		s.client.CloseIdleConnections()
	}
	return nil
}

// attempt is the outcome of one try.
type attempt struct {
	result Result
	// retry says the try may succeed if repeated, after retryAfter when the backend asked.
	retry      bool
	retryAfter time.Duration
	// staleConn says the try failed on a connection reused from before, which a freeze may
	// have killed; it is retried at once on a fresh one.
	staleConn bool
	err       error
}

// Export sends r, retrying with exponential backoff and jitter while ctx leaves room.
func (e *OTLP) Export(ctx context.Context, r Request) Result {
	s := e.targets[r.Signal()]
	items := r.Items()
	if s.URL == "" {
		// LoadConfig reported the endpoint as not valid. Refused at once: retried as a
		// transport failure, it would spend the flush's whole budget every time.
		return Result{Rejected: items, Err: fmt.Errorf("%s are not sent: their OTLP endpoint is not valid (see the configuration error)", r.Signal())}
	}
	body, err := s.encode(r)
	if err != nil {
		return Result{Rejected: items, Err: fmt.Errorf("encoding %s: %w", r.Signal(), err)}
	}
	backoff := initialBackoff
	freshTried := false
	for n := 1; ; n++ {
		a := s.try(ctx, r, body)
		if !a.retry {
			return a.result
		}
		if a.staleConn && !freshTried {
			freshTried = true
			s.client.CloseIdleConnections()
			continue
		}
		outOfBudget := func() Result {
			return Result{Retryable: true, RetryAfter: a.retryAfter, Err: fmt.Errorf("%w after %d attempts; last: %w", ErrBudget, n, a.err)}
		}
		wait := max(a.retryAfter, jitter(backoff))
		backoff = min(2*backoff, maxBackoff)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+minAttempt {
			return outOfBudget()
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return outOfBudget()
		}
	}
}

// jitter spreads a wait over ±20%, so that environments retrying together do not keep
// hitting the backend at the same instants.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// encode writes the request body: protobuf or JSON for HTTP, a length-prefixed protobuf
// message for gRPC; gzip-compressed when configured.
func (s *sender) encode(r Request) ([]byte, error) {
	msg, err := r.Marshal(s.Protocol == HTTPJSON)
	if err != nil {
		return nil, err
	}
	if s.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(msg); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		msg = buf.Bytes()
	}
	if s.Protocol == GRPC {
		return grpcwire.Frame(msg, s.Gzip), nil
	}
	return msg, nil
}

// try makes one attempt.
func (s *sender) try(ctx context.Context, r Request, body []byte) attempt {
	timeout := s.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reused := false
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	url := s.URL
	if s.Protocol == GRPC {
		url = strings.TrimSuffix(url, "/") + signalInfo[r.Signal()].grpcMethod
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attempt{result: Result{Rejected: r.Items(), Err: fmt.Errorf("building the %s request: %w", r.Signal(), err)}}
	}
	s.header(req, timeout)
	resp, err := s.client.Do(req)
	if err != nil {
		err = fmt.Errorf("sending %s to %s: %w", r.Signal(), s.URL, err)
		return attempt{retry: true, staleConn: reused && ctx.Err() == nil, err: err, result: Result{Retryable: true, Err: err}}
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		err = fmt.Errorf("reading the answer to %s from %s: %w", r.Signal(), s.URL, err)
		return attempt{retry: true, err: err, result: Result{Retryable: true, Err: err}}
	}
	if s.Protocol == GRPC {
		return s.grpcAnswer(r, resp, respBody)
	}
	return s.httpAnswer(r, resp, respBody)
}

func (s *sender) header(req *http.Request, timeout time.Duration) {
	h := req.Header
	switch s.Protocol {
	case GRPC:
		h.Set("Content-Type", "application/grpc")
		h.Set("TE", "trailers")
		h.Set("Grpc-Accept-Encoding", "gzip")
		h.Set("Grpc-Timeout", strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)+"m")
		if s.Gzip {
			h.Set("Grpc-Encoding", "gzip")
		}
	case HTTPJSON:
		h.Set("Content-Type", "application/json")
	default:
		h.Set("Content-Type", "application/x-protobuf")
	}
	if s.Gzip && s.Protocol != GRPC {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("User-Agent", "lambda-otel")
	for k, v := range s.Headers {
		h.Set(k, v)
	}
}

// httpAnswer reads an OTLP/HTTP answer: 2xx with an optional partial success; 429, 502,
// 503 and 504 retryable, with Retry-After honoured; anything else final.
func (s *sender) httpAnswer(r Request, resp *http.Response, body []byte) attempt {
	items := r.Items()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		ps, err := r.decodeResponse(body, s.Protocol == HTTPJSON || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
		if err != nil {
			// The data was accepted; only the answer is unreadable.
			return attempt{result: Result{Accepted: items}}
		}
		return attempt{result: partial(r, items, ps)}
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		err := fmt.Errorf("%s refused %s for now: %s%s", s.URL, r.Signal(), resp.Status, snippet(body))
		return attempt{retry: true, retryAfter: retryAfter(resp.Header.Get("Retry-After")), err: err, result: Result{Retryable: true, Err: err}}
	default:
		return attempt{result: Result{Rejected: items, Err: fmt.Errorf("%s refused %s: %s%s", s.URL, r.Signal(), resp.Status, snippet(body))}}
	}
}

// partial turns a partial success into a Result.
func partial(r Request, items int, ps partialSuccess) Result {
	if ps.rejected <= 0 {
		return Result{Accepted: items}
	}
	rej := int(min(ps.rejected, int64(items)))
	return Result{Accepted: items - rej, Rejected: rej, Err: fmt.Errorf("the backend rejected %d of %d %s items: %s", rej, items, r.Signal(), ps.message)}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// snippet quotes the start of an error answer for the log, as printable text.
func snippet(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	const limit = 200
	s := strings.ToValidUTF8(string(b[:min(len(b), limit)]), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return ": " + strings.TrimSpace(s)
}
