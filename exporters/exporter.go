// Package exporters sends OpenTelemetry data out of the extension: to OTLP backends over
// HTTP (protobuf or JSON) or gRPC, to a file of OTLP JSON lines, or as a summary on the
// console. Each export runs inside its caller's deadline, retrying what may succeed later,
// so that a slow or dead backend costs the function no more than the flush budget.
package exporters

import (
	"context"
	"errors"
	"time"
)

// Exporter sends requests to one destination.
type Exporter interface {
	// Name identifies the exporter in metrics and logs.
	Name() string
	// Export sends r before ctx ends, retrying failures that may pass.
	Export(ctx context.Context, r Request) Result
	// Close releases the exporter's connections and files.
	Close(ctx context.Context) error
}

// Result says what became of a request.
type Result struct {
	// Accepted is the number of items the destination took.
	Accepted int
	// Rejected is the number of items refused for good: a partial success, or an answer
	// that retrying cannot change. They are dropped.
	Rejected int
	// Retryable is set when nothing was delivered but a later attempt may succeed: the
	// deadline came first, or the destination is unreachable or overloaded. The caller
	// keeps the request for its next flush.
	Retryable bool
	// RetryAfter, for a Retryable result, is how long the destination asked to be left
	// alone (Retry-After, gRPC RetryInfo), 0 when it did not say: a later flush should not
	// try sooner.
	RetryAfter time.Duration
	// Err says why not every item was accepted; nil on full success.
	Err error
}

// ErrBudget is wrapped by the error of a Result whose deadline ran out before a delivery.
var ErrBudget = errors.New("the export budget ran out")
