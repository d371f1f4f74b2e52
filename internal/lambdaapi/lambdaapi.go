// Package lambdaapi is the one request helper shared by the clients of the Lambda
// Extensions and Telemetry APIs: JSON in, JSON out, and a typed error for any non-2xx
// answer carrying the API's errorType and errorMessage.
package lambdaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxResponseBytes bounds how much of an answer is read. Every Lambda API answer is a small
// JSON document; anything larger is a broken peer, and reading it whole would cost memory the
// function owns.
const maxResponseBytes = 1 << 20

// Error is a non-2xx answer from a Lambda API.
type Error struct {
	// Op names the call, e.g. "register" or "telemetry subscribe".
	Op string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Type and Message come from the answer's {"errorType","errorMessage"} body when it has one.
	Type    string
	Message string
	// Body is the raw answer when it was not such a document.
	Body string
}

func (e *Error) Error() string {
	switch {
	case e.Type != "" || e.Message != "":
		return fmt.Sprintf("%s: HTTP %d: %s: %s", e.Op, e.StatusCode, e.Type, e.Message)
	case e.Body != "":
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.StatusCode, e.Body)
	default:
		return fmt.Sprintf("%s: HTTP %d", e.Op, e.StatusCode)
	}
}

// StatusCode returns the HTTP status carried by err, or 0 when err is not an *Error.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// Request is one call to a Lambda API.
type Request struct {
	// Op names the call in errors.
	Op     string
	Method string
	URL    string
	Header map[string]string
	// Body is marshalled as JSON when non-nil.
	Body any
}

// Response is a 2xx answer.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Do sends r and returns the answer when its status is 2xx, else an *Error. A nil out is
// allowed; otherwise a non-empty 2xx body is decoded into it.
func Do(ctx context.Context, hc *http.Client, r Request, out any) (*Response, error) {
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: encoding request: %w", r.Op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("%s: building request: %w", r.Op, err)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: reading answer: %w", r.Op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newError(r.Op, resp.StatusCode, b)
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s: decoding answer %q: %w", r.Op, truncate(b), err)
		}
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func newError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, StatusCode: status}
	var doc struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &doc) == nil && (doc.Type != "" || doc.Message != "") {
		e.Type, e.Message = doc.Type, doc.Message
	} else {
		e.Body = truncate(body)
	}
	return e
}

// truncate keeps error messages readable when a peer answers with a large body.
func truncate(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
