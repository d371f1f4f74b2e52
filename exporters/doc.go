// Package exporters sends converted OpenTelemetry data to its destinations: OTLP over
// http/protobuf, http/json and gRPC, and local file and console sinks. It holds no senders
// yet; the extension keeps its events until shutdown.
package exporters
