// Package destination delivers what Lambda sends when an asynchronous invocation ends: the
// invocation record to an on-success or on-failure destination, and the event itself to a
// dead-letter queue. Each kind of target has a local stand-in: an SQS queue, an SNS topic or
// an EventBridge event bus is a file of NDJSON under a directory, one file per ARN; a Lambda
// function is a URL the record is posted to.
package destination

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/arn"
)

// Conditions of an invocation record: why it was sent.
const (
	Success          = "Success"
	RetriesExhausted = "RetriesExhausted"
	EventAgeExceeded = "EventAgeExceeded"
)

// TimeFormat is the record's timestamp, ISO 8601 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Record is the invocation record of an asynchronous invocation, version 1.0.
type Record struct {
	Version        string         `json:"version"`
	Timestamp      string         `json:"timestamp"`
	RequestContext RequestContext `json:"requestContext"`
	// RequestPayload is the event the function was invoked with.
	RequestPayload json.RawMessage `json:"requestPayload"`
	// ResponseContext and ResponsePayload are the last attempt's; an event that expired
	// before any attempt has neither.
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext says which invocation a record is about and why it was sent.
type RequestContext struct {
	RequestID   string `json:"requestId"`
	FunctionArn string `json:"functionArn"`
	Condition   string `json:"condition"`
	// ApproximateInvokeCount is the number of attempts made.
	ApproximateInvokeCount int `json:"approximateInvokeCount"`
}

// ResponseContext is how the last attempt answered. StatusCode is the Invoke status, 200
// for a function error too, which FunctionError then names (Unhandled or Handled).
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// JSON returns b as a JSON value for a record: itself when it is JSON, as a string when it
// is not, null when empty.
func JSON(b []byte) json.RawMessage {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return json.RawMessage("null")
	case json.Valid(b):
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// DeadLetter is the message a dead-letter queue or topic receives: the event as it was
// sent, with the attributes Lambda adds.
type DeadLetter struct {
	Body              string               `json:"body"`
	MessageAttributes map[string]Attribute `json:"messageAttributes"`
}

// Attribute is a message attribute; DataType is String or Number.
type Attribute struct {
	DataType    string `json:"dataType"`
	StringValue string `json:"stringValue"`
}

// maxErrorMessage is how much of the error message a dead letter carries.
const maxErrorMessage = 1024

// NewDeadLetter is the dead letter of an event: its request id, the status code of the
// last attempt (0 when none was made, which leaves ErrorCode out) and the first KB of its
// error message.
func NewDeadLetter(event []byte, requestID string, errorCode int, errorMessage string) DeadLetter {
	if len(errorMessage) > maxErrorMessage {
		errorMessage = errorMessage[:maxErrorMessage]
	}
	d := DeadLetter{Body: string(event), MessageAttributes: map[string]Attribute{
		"RequestID":    {DataType: "String", StringValue: requestID},
		"ErrorMessage": {DataType: "String", StringValue: errorMessage},
	}}
	if errorCode != 0 {
		d.MessageAttributes["ErrorCode"] = Attribute{DataType: "Number", StringValue: fmt.Sprint(errorCode)}
	}
	return d
}

// busEvent is an EventBridge event carrying a record as its detail.
type busEvent struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     Record   `json:"detail"`
}

// Deliverer sends records and dead letters to the stand-ins of their targets.
type Deliverer struct {
	// Dir holds the NDJSON files of queues, topics and event buses.
	Dir string
	// URLs maps Lambda function ARNs to the URLs their records are posted to.
	URLs map[string]string
	// Client posts to URLs; nil is a client with a 10 s timeout, which bounds a delivery.
	Client *http.Client
	// NewID returns the id of an EventBridge event.
	NewID func() string

	mu sync.Mutex
}

// FileName is the file, under Dir, of a queue's, topic's or event bus's ARN: the ARN with
// ':' and '/' as '_', and .ndjson.
func FileName(target string) string {
	return strings.NewReplacer(":", "_", "/", "_").Replace(target) + ".ndjson"
}

// Record delivers rec to the destination dest: as the message of a queue or topic, the
// detail of an event bus's event, or the payload of a function. trace, the invocation's
// X-Amzn-Trace-Id if it was traced, is passed on to a function, which joins its trace.
func (d *Deliverer) Record(ctx context.Context, dest, trace string, rec Record) error {
	r, err := d.target(dest)
	if err != nil {
		return err
	}
	var v any = rec
	switch r.Kind {
	case arn.LambdaFunction:
		return d.post(ctx, r, trace, rec)
	case arn.EventBus:
		detail := "Lambda Function Invocation Result - Success"
		if rec.RequestContext.Condition != Success {
			detail = "Lambda Function Invocation Result - Failure"
		}
		v = busEvent{Version: "0", ID: d.NewID(), DetailType: detail, Source: "lambda",
			Account: r.Account, Time: time.Now().UTC().Format(time.RFC3339), Region: r.Region,
			Resources: []string{rec.RequestContext.FunctionArn, dest}, Detail: rec}
	}
	return d.appendLine(r, v)
}

// DeadLetter delivers msg to a dead-letter queue or topic.
func (d *Deliverer) DeadLetter(target string, msg DeadLetter) error {
	r, err := d.target(target)
	if err != nil {
		return err
	}
	if r.Kind != arn.Queue && r.Kind != arn.Topic {
		return fmt.Errorf("dead-letter target %s: a %s cannot be one; use an SQS queue or an SNS topic", target, r.Kind)
	}
	return d.appendLine(r, msg)
}

func (d *Deliverer) target(s string) (arn.Resource, error) {
	r, err := arn.ParseDestination(s)
	switch {
	case err != nil:
		return arn.Resource{}, err
	case r.Fifo():
		return arn.Resource{}, fmt.Errorf("%s: a FIFO %s cannot receive records from Lambda", s, r.Kind)
	case r.Kind == arn.Bucket:
		return arn.Resource{}, fmt.Errorf("%s: an S3 bucket cannot receive records of asynchronous invocations", s)
	}
	return r, nil
}

// appendLine writes v as one line of r's file. The file is opened for each line so that a
// reader may move or truncate it between deliveries.
func (d *Deliverer) appendLine(r arn.Resource, v any) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("delivering to %s: %w", r.ARN, err)
		}
	}()
	if d.Dir == "" {
		return errors.New("no destinations directory is set")
	}
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the message: %w", err)
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.Dir, FileName(r.ARN)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(line)
	return errors.Join(werr, f.Close())
}

// post invokes the function standing at r's URL asynchronously with rec as its event.
func (d *Deliverer) post(ctx context.Context, r arn.Resource, trace string, rec Record) error {
	url, ok := d.URLs[r.ARN]
	if !ok {
		return fmt.Errorf("delivering to %s: no URL is mapped to this function", r.ARN)
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the record for %s: %w", r.ARN, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("delivering to %s at %s: %w", r.ARN, url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	if trace != "" {
		req.Header.Set("X-Amzn-Trace-Id", trace)
	}
	c := d.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("delivering to %s at %s: %w", r.ARN, url, err)
	}
	// Drained, so that the connection serves the next record.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("delivering to %s at %s: answered %s", r.ARN, url, resp.Status)
	}
	return nil
}
