package receiver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"

	"github.com/lambda-otel/lambda-otel/internal/fastserve"
	"github.com/lambda-otel/lambda-otel/telemetry"
)

// Media types of OTLP/HTTP.
const (
	typeProtobuf = "application/x-protobuf"
	typeJSON     = "application/json"
)

// httpServer is the OTLP/HTTP side of a Receiver.
type httpServer struct {
	server *fastserve.Server
}

// serveHTTP serves OTLP/HTTP on lns. Like the telemetry listener it sets no read timeout:
// a frozen environment wakes past any deadline, and the connection bound keeps silent
// connections from piling up.
func (r *Receiver) serveHTTP(lns []net.Listener) *httpServer {
	srv := &fasthttp.Server{
		Handler:                      r.handleHTTP,
		ErrorHandler:                 r.handleHTTPError,
		MaxRequestBodySize:           r.maxBody,
		Concurrency:                  maxConns,
		Logger:                       nopLogger{},
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true, // else fasthttp starts a process-wide ticker goroutine
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
	}
	s := fastserve.New(srv, fastserve.Hooks{Changed: r.signalChange})
	s.Serve(lns...)
	return &httpServer{server: s}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// handleHTTP answers an OTLP/HTTP export request as the OTLP specification says: 200 with
// the export response (and its partial success), 429 with Retry-After when the buffer is
// full, 400, 404, 405, 413 or 415 with a google.rpc.Status for what it cannot take.
func (r *Receiver) handleHTTP(rc *fasthttp.RequestCtx) {
	asJSON := false
	defer func() {
		if p := recover(); p != nil {
			r.stats.Fail(telemetry.ReceivePanic)
			rc.ResetBody()
			httpError(rc, fasthttp.StatusInternalServerError, codeInternal, "the receiver failed to handle the request", asJSON)
		}
	}()
	sig := signalAt(string(rc.Path()))
	if sig == nil {
		r.stats.Fail(telemetry.ReceiveUnsupported)
		httpError(rc, fasthttp.StatusNotFound, codeUnimplemented, "no OTLP signal at "+string(rc.Path())+"; want /v1/traces, /v1/logs or /v1/metrics", asJSON)
		return
	}
	if !rc.IsPost() {
		r.stats.Fail(telemetry.ReceiveUnsupported)
		rc.Response.Header.Set("Allow", fasthttp.MethodPost)
		httpError(rc, fasthttp.StatusMethodNotAllowed, codeUnimplemented, "OTLP/HTTP takes POST only", asJSON)
		return
	}
	mt, _, _ := mime.ParseMediaType(string(rc.Request.Header.ContentType()))
	switch mt {
	case typeProtobuf:
	case typeJSON:
		asJSON = true
	default:
		r.stats.Fail(telemetry.ReceiveUnsupported)
		httpError(rc, fasthttp.StatusUnsupportedMediaType, codeInvalidArgument, "Content-Type "+strconv.Quote(mt)+" is not OTLP; want "+typeProtobuf+" or "+typeJSON, asJSON)
		return
	}
	body, err := r.uncompress(rc.PostBody(), string(rc.Request.Header.ContentEncoding()))
	switch {
	case errors.Is(err, errUnsupportedEncoding):
		r.stats.Fail(telemetry.ReceiveUnsupported)
		httpError(rc, fasthttp.StatusUnsupportedMediaType, codeInvalidArgument, err.Error(), asJSON)
		return
	case errors.Is(err, errTooLarge):
		r.stats.Fail(telemetry.ReceiveTooLarge)
		httpError(rc, fasthttp.StatusRequestEntityTooLarge, codeInvalidArgument, err.Error(), asJSON)
		return
	case err != nil:
		r.stats.Fail(telemetry.ReceiveMalformed)
		httpError(rc, fasthttp.StatusBadRequest, codeInvalidArgument, "the gzip body is corrupt: "+err.Error(), asJSON)
		return
	}
	a := r.take(sig, body, asJSON)
	switch a.outcome {
	case malformed:
		httpError(rc, fasthttp.StatusBadRequest, codeInvalidArgument, a.message, asJSON)
	case full:
		rc.Response.Header.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
		httpError(rc, fasthttp.StatusTooManyRequests, codeResourceExhausted, a.message, asJSON)
	default:
		setType(rc, asJSON)
		rc.SetStatusCode(fasthttp.StatusOK)
		rc.SetBody(a.response(sig, asJSON))
	}
}

// handleHTTPError answers requests fasthttp could not read: an oversized body with 413,
// anything else (a broken request, a connection cut mid-body) with 400.
func (r *Receiver) handleHTTPError(rc *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		r.stats.Fail(telemetry.ReceiveTooLarge)
		httpError(rc, fasthttp.StatusRequestEntityTooLarge, codeInvalidArgument, errTooLarge.Error(), false)
		return
	}
	r.stats.Fail(telemetry.ReceiveMalformed)
	httpError(rc, fasthttp.StatusBadRequest, codeInvalidArgument, "the request could not be read", false)
}

func setType(rc *fasthttp.RequestCtx, asJSON bool) {
	if asJSON {
		rc.SetContentType(typeJSON)
	} else {
		rc.SetContentType(typeProtobuf)
	}
}

func httpError(rc *fasthttp.RequestCtx, status, code int, message string, asJSON bool) {
	setType(rc, asJSON)
	rc.SetStatusCode(status)
	rc.SetBody(statusMessage(code, message, 0, asJSON))
}

func signalAt(path string) *signal {
	for i := range signals {
		if signals[i].path == path {
			return &signals[i]
		}
	}
	return nil
}

// errUnsupportedEncoding is the error of a Content-Encoding other than gzip.
var errUnsupportedEncoding = errors.New("unsupported Content-Encoding")

// uncompress returns body as encoding (Content-Encoding) says, up to the body limit.
func (r *Receiver) uncompress(body []byte, encoding string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return body, nil
	case "gzip":
	default:
		return nil, fmt.Errorf("%w %q; want gzip or none", errUnsupportedEncoding, encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(r.maxBody)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > r.maxBody {
		return nil, errTooLarge
	}
	return out, nil
}
