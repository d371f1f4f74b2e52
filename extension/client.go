// Package extension is the lambda-otel extension's lifecycle: the Extensions API client,
// its configuration, and the agent that registers, subscribes to telemetry and runs the
// event loop until SHUTDOWN.
package extension

import (
	"context"
	"net/http"
	"strings"

	"github.com/lambda-otel/lambda-otel/internal/lambdaapi"
)

// Header names of the Extensions API.
const (
	HeaderName          = "Lambda-Extension-Name"
	HeaderIdentifier    = "Lambda-Extension-Identifier"
	HeaderEventID       = "Lambda-Extension-Event-Identifier"
	HeaderAcceptFeature = "Lambda-Extension-Accept-Feature"
	HeaderErrorType     = "Lambda-Extension-Function-Error-Type"
)

// FeatureAccountID asks Register to include the function's account id in its answer.
const FeatureAccountID = "accountId"

// RegisterResponse is the body of a successful register call.
type RegisterResponse struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	// AccountID is set only when FeatureAccountID was asked for.
	AccountID string `json:"accountId,omitempty"`
}

// ErrorRequest is the optional body of init/error and exit/error.
type ErrorRequest struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

// Client speaks the Extensions API (2020-01-01) for one extension. It is not safe for
// concurrent Register calls; every other method may be called from any goroutine after
// Register.
type Client struct {
	base string
	name string
	hc   *http.Client
	id   string
}

// NewClient returns a client for the API at runtimeAPI (host:port, the value of
// AWS_LAMBDA_RUNTIME_API) registering as name, which must be the executable's file name.
// hc must have no overall timeout: event/next blocks for as long as the environment is
// frozen.
func NewClient(runtimeAPI, name string, hc *http.Client) *Client {
	return &Client{base: "http://" + runtimeAPI + "/2020-01-01/extension", name: name, hc: hc}
}

// ID returns the Lambda-Extension-Identifier that Register received.
func (c *Client) ID() string { return c.id }

// Register registers the extension for events, asking for the given optional features.
func (c *Client) Register(ctx context.Context, events []EventType, features ...string) (RegisterResponse, error) {
	hdr := map[string]string{HeaderName: c.name}
	if len(features) > 0 {
		hdr[HeaderAcceptFeature] = strings.Join(features, ",")
	}
	if events == nil {
		events = []EventType{}
	}
	var out RegisterResponse
	resp, err := lambdaapi.Do(ctx, c.hc, lambdaapi.Request{
		Op: "register", Method: http.MethodPost, URL: c.base + "/register", Header: hdr,
		Body: struct {
			Events []EventType `json:"events"`
		}{events},
	}, &out)
	if err != nil {
		return RegisterResponse{}, err
	}
	c.id = resp.Header.Get(HeaderIdentifier)
	if c.id == "" {
		return RegisterResponse{}, &lambdaapi.Error{Op: "register", StatusCode: resp.StatusCode, Message: "answer has no " + HeaderIdentifier + " header"}
	}
	return out, nil
}

// Next blocks until the next event. It has no timeout of its own; cancel ctx to abandon it.
func (c *Client) Next(ctx context.Context) (Event, error) {
	resp, err := lambdaapi.Do(ctx, c.hc, lambdaapi.Request{
		Op: "event/next", Method: http.MethodGet, URL: c.base + "/event/next",
		Header: map[string]string{HeaderIdentifier: c.id},
	}, nil)
	if err != nil {
		return Event{}, err
	}
	return decodeEvent(resp.Header.Get(HeaderEventID), resp.Body)
}

// InitError reports that initialisation failed after Register. Lambda accepts no further
// call from the extension afterwards; the caller must exit.
func (c *Client) InitError(ctx context.Context, errorType string, body ErrorRequest) error {
	return c.reportError(ctx, "init/error", errorType, body)
}

// ExitError reports an unexpected failure before exiting. Lambda accepts no further call
// from the extension afterwards; the caller must exit.
func (c *Client) ExitError(ctx context.Context, errorType string, body ErrorRequest) error {
	return c.reportError(ctx, "exit/error", errorType, body)
}

func (c *Client) reportError(ctx context.Context, path, errorType string, body ErrorRequest) error {
	if body.ErrorType == "" {
		body.ErrorType = errorType
	}
	if body.StackTrace == nil {
		body.StackTrace = []string{}
	}
	_, err := lambdaapi.Do(ctx, c.hc, lambdaapi.Request{
		Op: path, Method: http.MethodPost, URL: c.base + "/" + path,
		Header: map[string]string{HeaderIdentifier: c.id, HeaderErrorType: errorType},
		Body:   body,
	}, nil)
	return err
}
