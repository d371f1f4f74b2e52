package telemetry

import (
	"context"
	"net/http"
	"strings"

	"github.com/lambda-otel/lambda-otel/internal/lambdaapi"
)

// SchemaVersion is the Telemetry API schema this package subscribes with. It is the first
// one whose function and extension records may be JSON objects.
const SchemaVersion = "2022-12-13"

// Stream is one of the telemetry streams a subscription can ask for.
type Stream string

// The streams of the Telemetry API.
const (
	StreamPlatform  Stream = "platform"
	StreamFunction  Stream = "function"
	StreamExtension Stream = "extension"
)

// Buffering limits of the Telemetry API: the platform delivers a batch as soon as any of
// them is reached.
const (
	MinMaxItems  = 1000
	MaxMaxItems  = 10000
	MinMaxBytes  = 262144
	MaxMaxBytes  = 1048576
	MinTimeoutMs = 25
	MaxTimeoutMs = 30000
)

// Buffering is how the platform batches deliveries to the listener.
type Buffering struct {
	MaxItems  int `json:"maxItems"`
	MaxBytes  int `json:"maxBytes"`
	TimeoutMs int `json:"timeoutMs"`
}

// Destination is where the platform delivers. Only HTTP is used: with TCP the platform
// cannot tell whether a batch was received, so a crash would lose it.
type Destination struct {
	Protocol string `json:"protocol"`
	URI      string `json:"URI"`
}

// SubscribeRequest is the body of PUT /2022-07-01/telemetry.
type SubscribeRequest struct {
	SchemaVersion string      `json:"schemaVersion"`
	Types         []Stream    `json:"types"`
	Buffering     Buffering   `json:"buffering"`
	Destination   Destination `json:"destination"`
}

// SubscribeResult is a 2xx answer to a subscription.
type SubscribeResult struct {
	StatusCode int
	// Body is the answer as sent: "OK" from Lambda, an explanation from local emulators.
	Body string
}

// Delivering reports whether the platform promised delivery. A 202 comes from local
// emulators that accept a subscription and may never deliver anything.
func (r SubscribeResult) Delivering() bool { return r.StatusCode == http.StatusOK }

// Subscribe asks the Telemetry API at runtimeAPI (host:port) to deliver req.Types to the
// destination. Any non-2xx answer is a *lambdaapi.Error carrying the status and body.
func Subscribe(ctx context.Context, hc *http.Client, runtimeAPI, extensionID string, req SubscribeRequest) (SubscribeResult, error) {
	resp, err := lambdaapi.Do(ctx, hc, lambdaapi.Request{
		Op: "telemetry subscribe", Method: http.MethodPut,
		URL:    "http://" + runtimeAPI + "/2022-07-01/telemetry",
		Header: map[string]string{"Lambda-Extension-Identifier": extensionID},
		Body:   req,
	}, nil)
	if err != nil {
		return SubscribeResult{}, err
	}
	return SubscribeResult{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(resp.Body))}, nil
}
