package extension

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/exporters"
	"github.com/lambda-otel/lambda-otel/receiver"
	"github.com/lambda-otel/lambda-otel/telemetry"
	"github.com/lambda-otel/lambda-otel/telemetry/convert"
)

// Environment variables the extension reads.
const (
	EnvTelemetryTypes  = "LAMBDA_OTEL_TELEMETRY_TYPES"
	EnvBufferTimeoutMs = "LAMBDA_OTEL_BUFFER_TIMEOUT_MS"
	EnvBufferMaxItems  = "LAMBDA_OTEL_BUFFER_MAX_ITEMS"
	EnvBufferMaxBytes  = "LAMBDA_OTEL_BUFFER_MAX_BYTES"
	EnvListenerPort    = "LAMBDA_OTEL_LISTENER_PORT"
	EnvQueueMaxBytes   = "LAMBDA_OTEL_QUEUE_MAX_BYTES"
	EnvLogLevel        = "LAMBDA_OTEL_LOG_LEVEL"
	EnvPhaseSpans      = "LAMBDA_OTEL_PHASE_SPANS"
	EnvPlatformLogs    = "LAMBDA_OTEL_PLATFORM_LOGS"
	EnvFaaSTrigger     = "LAMBDA_OTEL_FAAS_TRIGGER"
	EnvFlush           = "LAMBDA_OTEL_FLUSH"
	EnvFlushTimeoutMs  = "LAMBDA_OTEL_FLUSH_TIMEOUT_MS"
	EnvReceiver        = "LAMBDA_OTEL_RECEIVER"

	EnvServiceName        = "OTEL_SERVICE_NAME"
	EnvResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	EnvMetricsTemporality = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
	envFunctionName       = "AWS_LAMBDA_FUNCTION_NAME"
	envFunctionVersion    = "AWS_LAMBDA_FUNCTION_VERSION"
	envFunctionMemory     = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
	envRegion             = "AWS_REGION"
	envDefaultRegion      = "AWS_DEFAULT_REGION"
	envLogGroup           = "AWS_LAMBDA_LOG_GROUP_NAME"
)

// reservedPort is the Lambda APIs' own port; nothing else may listen on it.
const reservedPort = 9001

// Bounds of the extension's own buffer. The lower bound holds one full delivery at the
// largest buffering the platform allows; the upper one keeps a misconfiguration from
// eating the function's memory.
const (
	minQueueBytes = 4 << 20
	maxQueueBytes = 512 << 20
)

// Config is the extension's configuration, built once at start.
type Config struct {
	// Streams to subscribe to; empty subscribes to nothing and starts no listener.
	Streams []telemetry.Stream
	// Buffering is how the platform batches deliveries.
	Buffering telemetry.Buffering
	// ListenerPort is the telemetry listener's port; 0 picks a free one.
	ListenerPort int
	// QueueMaxBytes bounds the events held between flushes, in wire bytes.
	QueueMaxBytes int
	// LogLevel is the least severe level the extension logs.
	LogLevel slog.Level
	// Convert is what the conversion to OpenTelemetry produces.
	Convert convert.Config
	// Resource describes the function as its environment tells; the register response
	// completes it.
	Resource convert.Resource
	// Flush is when telemetry is exported.
	Flush Flush
	// FlushTimeoutMs bounds each flush during an invocation: what is not sent by then
	// waits for the next flush.
	FlushTimeoutMs int
	// Export chooses and configures the exporters.
	Export exporters.Config
	// Receiver is the local OTLP receiver for the function's own telemetry.
	Receiver receiver.Config
}

// FlushMode is a flush strategy of LAMBDA_OTEL_FLUSH.
type FlushMode int

const (
	// FlushAdaptive flushes like FlushEnd while invocations are sparse, and like
	// FlushPeriodic (every adaptivePeriod) once they come often.
	FlushAdaptive FlushMode = iota
	// FlushEnd flushes after each invocation's platform.runtimeDone, before event/next.
	FlushEnd
	// FlushPeriodic flushes at the start of an invocation when the last flush is older
	// than the period.
	FlushPeriodic
	// FlushShutdown flushes only at shutdown.
	FlushShutdown
)

// Flush is a flush strategy.
type Flush struct {
	Mode FlushMode
	// Period is FlushPeriodic's.
	Period time.Duration
}

// DefaultConfig is the configuration with nothing set. The 25 ms batch timeout (the
// platform's minimum) gets each invocation's records to the listener before the invocation
// ends, so they can be flushed with it.
func DefaultConfig() Config {
	return Config{
		Streams:        []telemetry.Stream{telemetry.StreamPlatform, telemetry.StreamFunction, telemetry.StreamExtension},
		Buffering:      telemetry.Buffering{MaxItems: telemetry.MaxMaxItems, MaxBytes: telemetry.MinMaxBytes, TimeoutMs: telemetry.MinTimeoutMs},
		ListenerPort:   4243,
		QueueMaxBytes:  16 << 20,
		LogLevel:       slog.LevelInfo,
		Convert:        convert.DefaultConfig(),
		FlushTimeoutMs: 1000,
		Export:         exporters.DefaultConfig(),
		Receiver:       receiver.Config{HTTP: true, HTTPPort: receiver.DefaultHTTPPort, GRPCPort: receiver.DefaultGRPCPort},
	}
}

// intVar is an integer setting with its valid range.
type intVar struct {
	name     string
	value    *int
	min, max int
	except   int // a value in range that is still refused; 0 when none
}

func (v intVar) valid(n int) bool {
	return n >= v.min && n <= v.max && (v.except == 0 || n != v.except)
}

func (v intVar) want() string {
	s := fmt.Sprintf("an integer from %d to %d", v.min, v.max)
	if v.except != 0 {
		s += fmt.Sprintf(" except %d", v.except)
	}
	return s
}

func (c *Config) intVars() []intVar {
	return []intVar{
		{name: EnvBufferTimeoutMs, value: &c.Buffering.TimeoutMs, min: telemetry.MinTimeoutMs, max: telemetry.MaxTimeoutMs},
		{name: EnvBufferMaxItems, value: &c.Buffering.MaxItems, min: telemetry.MinMaxItems, max: telemetry.MaxMaxItems},
		{name: EnvBufferMaxBytes, value: &c.Buffering.MaxBytes, min: telemetry.MinMaxBytes, max: telemetry.MaxMaxBytes},
		{name: EnvListenerPort, value: &c.ListenerPort, min: 0, max: 65535, except: reservedPort},
		{name: EnvQueueMaxBytes, value: &c.QueueMaxBytes, min: minQueueBytes, max: maxQueueBytes},
		{name: EnvFlushTimeoutMs, value: &c.FlushTimeoutMs, min: 10, max: 60000},
	}
}

const (
	wantStreams     = `a comma-separated list of "platform", "function", "extension", or "none"`
	wantLogLevel    = `one of "debug", "info", "warn", "error"`
	wantPhaseSpans  = `"events" or "children"`
	wantTemporality = `"cumulative", "delta" or "lowmemory"`
	wantTrigger     = `one of "datasource", "http", "pubsub", "timer", "other"`
	wantAttributes  = `comma-separated key=value pairs with percent-encoded values`
	wantFlush       = `"adaptive", "end", "periodic,<milliseconds>" or "shutdown"`
	wantReceiver    = `a comma-separated list of "http" and "grpc", each with an optional ":port" (4318 and 4317 by default), or "none"`
)

// LoadConfig reads the configuration from lookup (os.LookupEnv in production). An unset or
// empty variable takes its default. A bad value also takes its default, so the extension
// keeps working, and is reported in the returned error, which names every bad variable
// and its valid values.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	c := DefaultConfig()
	var errs []error
	bad := func(name, value, want, def string) {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: want %s; using the default %s", name, value, want, def))
	}
	get := func(name string) (string, bool) {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	for _, v := range c.intVars() {
		s, ok := get(v.name)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || !v.valid(n) {
			bad(v.name, s, v.want(), strconv.Itoa(*v.value))
			continue
		}
		*v.value = n
	}
	if s, ok := get(EnvTelemetryTypes); ok {
		if streams, err := parseStreams(s); err != nil {
			bad(EnvTelemetryTypes, s, wantStreams, joinStreams(c.Streams))
		} else {
			c.Streams = streams
		}
	}
	if s, ok := get(EnvLogLevel); ok {
		if err := c.LogLevel.UnmarshalText([]byte(s)); err != nil || !validLogLevel(s) {
			c.LogLevel = slog.LevelInfo
			bad(EnvLogLevel, s, wantLogLevel, "info")
		}
	}
	if s, ok := get(EnvPhaseSpans); ok {
		switch strings.ToLower(s) {
		case "events":
			c.Convert.PhaseSpans = convert.SpanEvents
		case "children":
			c.Convert.PhaseSpans = convert.ChildSpans
		default:
			bad(EnvPhaseSpans, s, wantPhaseSpans, "events")
		}
	}
	if s, ok := get(EnvPlatformLogs); ok {
		if p, err := convert.ParsePlatformLogs(s); err != nil {
			bad(EnvPlatformLogs, s, convert.WantPlatformLogs, "all")
		} else {
			c.Convert.PlatformLogs = p
		}
	}
	if s, ok := get(EnvFaaSTrigger); ok {
		if t := strings.ToLower(s); slices.Contains(convert.Triggers, t) {
			c.Convert.Trigger = t
		} else {
			bad(EnvFaaSTrigger, s, wantTrigger, "none")
		}
	}
	temporalityVar := EnvMetricsTemporality
	if exporters.Family(lookup) == exporters.FamilyExtension {
		temporalityVar = "LAMBDA_" + EnvMetricsTemporality
	}
	if s, ok := get(temporalityVar); ok {
		// Every instrument is a counter or a histogram, for which lowmemory means delta.
		switch strings.ToLower(s) {
		case "cumulative":
			c.Convert.Temporality = convert.Cumulative
		case "delta", "lowmemory":
			c.Convert.Temporality = convert.Delta
		default:
			bad(temporalityVar, s, wantTemporality, "cumulative")
		}
	}
	if s, ok := get(EnvFlush); ok {
		if f, err := parseFlush(s); err != nil {
			bad(EnvFlush, s, wantFlush, "adaptive")
		} else {
			c.Flush = f
		}
	}
	if s, ok := get(EnvReceiver); ok {
		if r, err := parseReceiver(s); err != nil {
			bad(EnvReceiver, s, wantReceiver+" ("+err.Error()+")", "http")
		} else {
			c.Receiver = r
		}
	}
	exp, err := exporters.LoadConfig(lookup)
	errs = append(errs, err)
	c.Export = exp
	c.Resource = loadResource(get)
	if s, ok := get(EnvResourceAttributes); ok {
		if attrs, err := convert.ParseResourceAttributes(s); err != nil {
			bad(EnvResourceAttributes, s, wantAttributes+" ("+err.Error()+")", "of none")
		} else {
			c.Resource.Attributes = attrs
		}
	}
	return c, errors.Join(errs...)
}

// parseFlush reads a flush strategy; a period is at least 1 ms.
func parseFlush(s string) (Flush, error) {
	mode, arg, hasArg := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ",")
	switch mode {
	case "adaptive":
		return Flush{Mode: FlushAdaptive}, nil
	case "end":
		return Flush{Mode: FlushEnd}, nil
	case "shutdown":
		return Flush{Mode: FlushShutdown}, nil
	case "periodic":
		if !hasArg {
			return Flush{}, errors.New("periodic needs a period")
		}
		ms, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
		// A period beyond what a Duration holds would wrap round to a negative one.
		if err != nil || ms < 1 || ms > math.MaxInt64/int64(time.Millisecond) {
			return Flush{}, errors.New("bad period")
		}
		return Flush{Mode: FlushPeriodic, Period: time.Duration(ms) * time.Millisecond}, nil
	}
	return Flush{}, errors.New("unknown strategy")
}

// parseReceiver reads LAMBDA_OTEL_RECEIVER.
func parseReceiver(s string) (receiver.Config, error) {
	r := receiver.Config{HTTPPort: receiver.DefaultHTTPPort, GRPCPort: receiver.DefaultGRPCPort}
	if strings.EqualFold(s, "none") {
		return r, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, port, hasPort := strings.Cut(strings.ToLower(strings.TrimSpace(part)), ":")
		on, p := &r.HTTP, &r.HTTPPort
		switch name {
		case "http":
		case "grpc":
			on, p = &r.GRPC, &r.GRPCPort
		default:
			return r, fmt.Errorf("unknown protocol %q", name)
		}
		if *on {
			return r, fmt.Errorf("%s is given twice", name)
		}
		*on = true
		if hasPort {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 || n == reservedPort {
				return r, fmt.Errorf("port %q of %s is not a port from 1 to 65535 other than %d", port, name, reservedPort)
			}
			*p = n
		}
	}
	if r.HTTP && r.GRPC && r.HTTPPort == r.GRPCPort {
		return r, fmt.Errorf("http and grpc cannot share port %d", r.HTTPPort)
	}
	return r, nil
}

// loadResource reads what the Lambda environment says of the function.
func loadResource(get func(string) (string, bool)) convert.Resource {
	val := func(k string) string { v, _ := get(k); return v }
	r := convert.Resource{
		ServiceName:     val(EnvServiceName),
		FunctionName:    val(envFunctionName),
		FunctionVersion: val(envFunctionVersion),
		Region:          cmp.Or(val(envRegion), val(envDefaultRegion)),
		LogGroup:        val(envLogGroup),
	}
	r.MemoryMB, _ = strconv.Atoi(val(envFunctionMemory))
	return r
}

// Validate reports every field outside its valid range, naming the variable that sets it.
func (c Config) Validate() error {
	var errs []error
	for _, v := range c.intVars() {
		if !v.valid(*v.value) {
			errs = append(errs, fmt.Errorf("%s=%d is not valid: want %s", v.name, *v.value, v.want()))
		}
	}
	for _, s := range c.Streams {
		if !slices.Contains(allStreams, s) {
			errs = append(errs, fmt.Errorf("%s has %q: want %s", EnvTelemetryTypes, s, wantStreams))
		}
	}
	if p := c.Convert.PhaseSpans; p != convert.SpanEvents && p != convert.ChildSpans {
		errs = append(errs, fmt.Errorf("%s has %d: want %s", EnvPhaseSpans, p, wantPhaseSpans))
	}
	if p := c.Convert.PlatformLogs; p&^convert.AllPlatformLogs != 0 {
		errs = append(errs, fmt.Errorf("%s has unknown types (%b): want %s", EnvPlatformLogs, p, convert.WantPlatformLogs))
	}
	if tr := c.Convert.Trigger; tr != "" && !slices.Contains(convert.Triggers, tr) {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: want %s", EnvFaaSTrigger, tr, wantTrigger))
	}
	if tm := c.Convert.Temporality; tm != convert.Cumulative && tm != convert.Delta {
		errs = append(errs, fmt.Errorf("%s has %d: want %s", EnvMetricsTemporality, tm, wantTemporality))
	}
	if l := c.LogLevel; l != slog.LevelDebug && l != slog.LevelInfo && l != slog.LevelWarn && l != slog.LevelError {
		errs = append(errs, fmt.Errorf("%s has %v: want %s", EnvLogLevel, l, wantLogLevel))
	}
	switch f := c.Flush; {
	case f.Mode < FlushAdaptive || f.Mode > FlushShutdown:
		errs = append(errs, fmt.Errorf("%s has mode %d: want %s", EnvFlush, f.Mode, wantFlush))
	case f.Mode == FlushPeriodic && f.Period < time.Millisecond:
		errs = append(errs, fmt.Errorf("%s has period %v: want at least 1 ms", EnvFlush, f.Period))
	}
	if r := c.Receiver; r.HTTP && r.GRPC && r.HTTPPort == r.GRPCPort {
		errs = append(errs, fmt.Errorf("%s has http and grpc on port %d: want %s", EnvReceiver, r.HTTPPort, wantReceiver))
	}
	if err := c.Export.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var allStreams = []telemetry.Stream{telemetry.StreamPlatform, telemetry.StreamFunction, telemetry.StreamExtension}

func parseStreams(s string) ([]telemetry.Stream, error) {
	if strings.EqualFold(s, "none") {
		return []telemetry.Stream{}, nil
	}
	var out []telemetry.Stream
	for part := range strings.SplitSeq(s, ",") {
		st := telemetry.Stream(strings.ToLower(strings.TrimSpace(part)))
		if !slices.Contains(allStreams, st) {
			return nil, fmt.Errorf("unknown telemetry type %q", part)
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

func joinStreams(ss []telemetry.Stream) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

// validLogLevel refuses the offsets ("info+2") slog would also accept: users set names.
func validLogLevel(s string) bool {
	return slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s))
}
