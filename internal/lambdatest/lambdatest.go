// Package lambdatest is an in-process stand-in for the Lambda Extensions and Telemetry APIs,
// for unit tests of their clients. It records every call and lets a test script the answers;
// tests that need the whole execution environment use the emulator instead.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Options script the answers of a Server.
type Options struct {
	// RegisterStatus, when non-zero, is the status register answers with instead of 200.
	RegisterStatus int
	// SubscribeStatus and SubscribeBody, when set, replace the 200 "OK" answer to subscribe.
	SubscribeStatus int
	SubscribeBody   string
	// AccountID is sent in the register answer when the extension asks for it.
	AccountID string
}

// RegisterCall is one register request.
type RegisterCall struct {
	Name           string
	AcceptFeatures string
	Events         []string
}

// ErrorCall is one init/error or exit/error request.
type ErrorCall struct {
	// Path is "init/error" or "exit/error".
	Path       string
	Identifier string
	ErrorType  string
	Body       map[string]any
}

// SubscribeCall is one telemetry subscribe request.
type SubscribeCall struct {
	Identifier string
	// Body is the request as sent, decoded.
	Body struct {
		SchemaVersion string   `json:"schemaVersion"`
		Types         []string `json:"types"`
		Buffering     struct {
			MaxItems  int `json:"maxItems"`
			MaxBytes  int `json:"maxBytes"`
			TimeoutMs int `json:"timeoutMs"`
		} `json:"buffering"`
		Destination struct {
			Protocol string `json:"protocol"`
			URI      string `json:"URI"`
		} `json:"destination"`
	}
}

// answer is what a pending event/next gets.
type answer struct {
	status int
	body   []byte
}

// Server is the fake API. Its channels deliver each call as it happens, so a test waits on
// them (with a deadline) instead of sleeping.
type Server struct {
	opts Options
	srv  *httptest.Server
	// Registers, Subscribes and Errors receive each call; they are buffered generously.
	Registers  chan RegisterCall
	Subscribes chan SubscribeCall
	Errors     chan ErrorCall
	// NextCalls receives the identifier of each event/next as it starts waiting.
	NextCalls chan string

	answers chan answer
	closing chan struct{}
	once    sync.Once
}

// New starts a Server; Close stops it.
func New(opts Options) *Server {
	s := &Server{
		opts:       opts,
		Registers:  make(chan RegisterCall, 16),
		Subscribes: make(chan SubscribeCall, 16),
		Errors:     make(chan ErrorCall, 16),
		NextCalls:  make(chan string, 1024),
		answers:    make(chan answer),
		closing:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2020-01-01/extension/register", s.register)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", s.next)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", s.reportError("init/error"))
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", s.reportError("exit/error"))
	mux.HandleFunc("PUT /2022-07-01/telemetry", s.subscribe)
	s.srv = httptest.NewServer(mux)
	return s
}

// Addr is host:port, the value for AWS_LAMBDA_RUNTIME_API.
func (s *Server) Addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// Close unblocks any pending event/next and stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Send answers the next pending event/next with event, encoded as JSON. It returns when
// the answer was handed over, or with ctx's error.
func (s *Server) Send(ctx context.Context, event any) error {
	b, err := json.Marshal(event)
	if err != nil {
		return err
	}
	return s.SendRaw(ctx, http.StatusOK, b)
}

// SendRaw answers the next pending event/next with status and body as given.
func (s *Server) SendRaw(ctx context.Context, status int, body []byte) error {
	select {
	case s.answers <- answer{status, body}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no event/next took the answer: %w", ctx.Err())
	}
}

// Recv waits for one value on ch until ctx ends, failing the test with what it waited for.
func Recv[T any](t testing.TB, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// Deliver posts a telemetry batch to the URI of the latest subscription sub.
func Deliver(ctx context.Context, sub SubscribeCall, batch []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Body.Destination.URI, bytes.NewReader(batch))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // no idle connection outlives the test
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusForbidden, "InvalidRequestFormat", err.Error())
		return
	}
	call := RegisterCall{Name: r.Header.Get("Lambda-Extension-Name"), AcceptFeatures: r.Header.Get("Lambda-Extension-Accept-Feature"), Events: body.Events}
	s.Registers <- call
	if s.opts.RegisterStatus != 0 {
		writeError(w, s.opts.RegisterStatus, "Extension.Test", "register refused by the test")
		return
	}
	resp := map[string]string{"functionName": "test-function", "functionVersion": "$LATEST", "handler": "bootstrap"}
	if strings.Contains(call.AcceptFeatures, "accountId") {
		resp["accountId"] = s.opts.AccountID
	}
	w.Header().Set("Lambda-Extension-Identifier", "ext-"+call.Name)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.NextCalls <- r.Header.Get("Lambda-Extension-Identifier")
	select {
	case a := <-s.answers:
		w.Header().Set("Lambda-Extension-Event-Identifier", "event-id")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	case <-r.Context().Done():
	case <-s.closing:
		writeError(w, http.StatusInternalServerError, "Test.Closed", "the fake API is closing")
	}
}

func (s *Server) reportError(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		call := ErrorCall{Path: path, Identifier: r.Header.Get("Lambda-Extension-Identifier"), ErrorType: r.Header.Get("Lambda-Extension-Function-Error-Type")}
		_ = json.NewDecoder(r.Body).Decode(&call.Body)
		s.Errors <- call
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
	}
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	call := SubscribeCall{Identifier: r.Header.Get("Lambda-Extension-Identifier")}
	if err := json.NewDecoder(r.Body).Decode(&call.Body); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	s.Subscribes <- call
	status, body := http.StatusOK, `"OK"`
	if s.opts.SubscribeStatus != 0 {
		status, body = s.opts.SubscribeStatus, s.opts.SubscribeBody
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	writeJSON(w, status, map[string]string{"errorType": errorType, "errorMessage": msg})
}
