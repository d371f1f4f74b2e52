package telemetry

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Received is one OTLP request the function sent to the extension's local receiver. It
// holds one signal; the others are their zero values.
type Received struct {
	Traces  ptrace.Traces
	Logs    plog.Logs
	Metrics pmetric.Metrics
	// Items is the number of spans, log records or data points.
	Items int
	// Size is the request's uncompressed size, the unit of the buffer's bound.
	Size int
}
