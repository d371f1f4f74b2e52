package emulator

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/arn"
)

// Config describes the function and how to run it. The zero value of every field but
// ExtensionsDir and TaskDir has a default (see Config.withDefaults).
type Config struct {
	// ExtensionsDir holds the external extensions, one executable per file, as /opt/extensions
	// does. It may be empty or missing: the function then runs without extensions.
	ExtensionsDir string
	// TaskDir is the function's code, LAMBDA_TASK_ROOT.
	TaskDir string
	// Bootstrap is the runtime. Empty means TaskDir/bootstrap, then bootstrap beside
	// ExtensionsDir (a layer's /opt/bootstrap), Lambda's own search order.
	Bootstrap string

	FunctionName    string // default "function"
	FunctionVersion string // default "$LATEST"
	Handler         string // _HANDLER; default "bootstrap"
	MemoryMB        int    // 128 to 10240; default 128
	Region          string // default "us-east-1"
	AccountID       string // default "123456789012"
	// RuntimeVersion, when set, is reported in platform.initStart as Lambda's managed
	// runtimes do; a custom runtime has none.
	RuntimeVersion string

	// Timeout bounds an invocation, extensions' work included; default 3 s.
	Timeout time.Duration
	// InitTimeout bounds the init phase; default 10 s.
	InitTimeout time.Duration
	// ShutdownTimeout is the time between SHUTDOWN and the kill of what still runs; default
	// 2 s, Lambda's figure with external extensions.
	ShutdownTimeout time.Duration

	// Env is the function's own variables ("K=V"): keys of at least two letters, digits and
	// underscores starting with a letter, not reserved by Lambda, 4 KB in all.
	Env []string
	// ExtensionDefaults are variables given to extensions when Env does not set them, such as
	// the embedded sink's OTEL_EXPORTER_OTLP_ENDPOINT.
	ExtensionDefaults []string

	// LogFormat is "Text" (default) or "JSON": with JSON, lines that are JSON objects reach
	// subscribers of the 2022-12-13 schema as objects, and platform lines are echoed as JSON.
	LogFormat string
	// Tracing is "PassThrough" (default: an invocation is traced when its caller sent a trace
	// header) or "Active" (every invocation is traced and sampled).
	Tracing string
	// Freeze stops every process between invocations (SIGSTOP) and resumes them for the next
	// one, as Lambda freezes an idle environment.
	Freeze bool

	// EventInvokeConfig, when set, is loaded at start: the AWS CLI's input JSON for
	// put-function-event-invoke-config (FunctionName and Qualifier optional).
	EventInvokeConfig []byte
	// AsyncTimeScale runs the asynchronous queue's clock (retry delays, event ages) this
	// many times real time: 1 (default) is real time, 0.001 makes a minute 60 ms.
	AsyncTimeScale float64
	// MaxQueuedEvents bounds the asynchronous invocations accepted and not finished;
	// default 1000. Past it, an asynchronous invoke is refused with 429.
	MaxQueuedEvents int
	// DestinationsDir holds the NDJSON files that stand in for SQS queues, SNS topics and
	// EventBridge event buses, one per ARN (see destination.FileName).
	DestinationsDir string
	// DestinationURLs maps Lambda function ARNs to the URLs their records are posted to.
	DestinationURLs map[string]string
	// DeadLetterTarget is the function's dead-letter queue or topic (an SQS or SNS ARN),
	// which receives the events that failed every attempt or grew too old.
	DeadLetterTarget string

	// Log receives what Lambda would write to CloudWatch: platform lines (START, END, REPORT,
	// …) and every function and extension line. Nil discards them.
	Log io.Writer
	// EventsOut receives every event generated, as Telemetry API JSON, one per line.
	EventsOut io.Writer
}

// Limits from the Lambda quotas.
const (
	MinMemoryMB     = 128
	MaxMemoryMB     = 10240
	MaxTimeout      = 900 * time.Second
	maxEnvBytes     = 4096
	MaxPayloadBytes = 6 << 20 // request and response of a synchronous invocation
	maxExtensions   = 10
)

// reservedEnv are the variables Lambda sets and a function cannot.
var reservedEnv = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}

// hiddenFromExtensions are the runtime's own variables, which extensions do not receive.
var hiddenFromExtensions = []string{
	"AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_RUNTIME_DIR",
	"LAMBDA_TASK_ROOT", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT", "_HANDLER",
}

func (c Config) withDefaults() Config {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.FunctionName, "function")
	set(&c.FunctionVersion, "$LATEST")
	set(&c.Handler, "bootstrap")
	set(&c.Region, "us-east-1")
	set(&c.AccountID, "123456789012")
	set(&c.LogFormat, "Text")
	set(&c.Tracing, "PassThrough")
	if c.MemoryMB == 0 {
		c.MemoryMB = MinMemoryMB
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Second
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.AsyncTimeScale == 0 {
		c.AsyncTimeScale = 1
	}
	if c.MaxQueuedEvents == 0 {
		c.MaxQueuedEvents = 1000
	}
	// Absolute: the processes run in other directories, where a relative path means
	// something else.
	for _, p := range []*string{&c.ExtensionsDir, &c.TaskDir, &c.Bootstrap, &c.DestinationsDir} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	return c
}

// Validate reports every invalid setting, naming it and its valid values.
func (c Config) Validate() error {
	var errs []error
	if c.TaskDir == "" {
		errs = append(errs, errors.New("task dir: required (the function's code, LAMBDA_TASK_ROOT)"))
	} else if fi, err := os.Stat(c.TaskDir); err != nil || !fi.IsDir() {
		errs = append(errs, fmt.Errorf("task dir %q: not a directory", c.TaskDir))
	}
	if c.MemoryMB < MinMemoryMB || c.MemoryMB > MaxMemoryMB {
		errs = append(errs, fmt.Errorf("memory %d MB: must be %d to %d", c.MemoryMB, MinMemoryMB, MaxMemoryMB))
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		errs = append(errs, fmt.Errorf("timeout %v: must be more than 0 and at most %v", c.Timeout, MaxTimeout))
	}
	if c.InitTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("init and shutdown timeouts: must be more than 0"))
	}
	if c.LogFormat != "Text" && c.LogFormat != "JSON" {
		errs = append(errs, fmt.Errorf("log format %q: must be Text or JSON", c.LogFormat))
	}
	if c.Tracing != "PassThrough" && c.Tracing != "Active" {
		errs = append(errs, fmt.Errorf("tracing %q: must be PassThrough or Active", c.Tracing))
	}
	errs = append(errs, c.validateAsync()...)
	size := 0
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		size += len(k) + len(v)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("environment variable %q: must be KEY=VALUE", kv))
		case !validEnvKey(k):
			errs = append(errs, fmt.Errorf("environment variable %q: a key starts with a letter and has at least 2 letters, digits or underscores", k))
		case slices.Contains(reservedEnv, k):
			errs = append(errs, fmt.Errorf("environment variable %q: reserved by Lambda", k))
		}
	}
	if size > maxEnvBytes {
		errs = append(errs, fmt.Errorf("environment variables: %d bytes, more than Lambda's %d", size, maxEnvBytes))
	}
	return errors.Join(errs...)
}

// validateAsync checks the settings of asynchronous invocation.
func (c Config) validateAsync() []error {
	var errs []error
	if !(c.AsyncTimeScale > 0) || math.IsInf(c.AsyncTimeScale, 0) {
		errs = append(errs, fmt.Errorf("async time scale %v: must be more than 0 (1 is real time)", c.AsyncTimeScale))
	}
	if c.MaxQueuedEvents < 0 {
		errs = append(errs, fmt.Errorf("max queued events %d: must be 0 (the default, 1000) or more", c.MaxQueuedEvents))
	}
	for a, u := range c.DestinationURLs {
		r, err := arn.ParseDestination(a)
		if err != nil || r.Kind != arn.LambdaFunction {
			errs = append(errs, fmt.Errorf("destination URL for %q: the key must be a Lambda function ARN", a))
		}
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
			errs = append(errs, fmt.Errorf("destination URL %q for %s: must be an http or https URL", u, a))
		}
	}
	if t := c.DeadLetterTarget; t != "" {
		r, err := arn.ParseDestination(t)
		if err != nil || r.Kind != arn.Queue && r.Kind != arn.Topic || r.Fifo() {
			errs = append(errs, fmt.Errorf("dead-letter target %q: must be the ARN of a standard SQS queue or SNS topic", t))
		}
	}
	return errs
}

func validEnvKey(k string) bool {
	if len(k) < 2 || !isLetter(k[0]) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isLetter(k[i]) && (k[i] < '0' || k[i] > '9') && k[i] != '_' {
			return false
		}
	}
	return true
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// extensionFiles lists the executables of the extensions directory in name order.
func (c Config) extensionFiles() ([]string, error) {
	if c.ExtensionsDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(c.ExtensionsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the extensions directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		path := filepath.Join(c.ExtensionsDir, e.Name())
		// Stat, not the entry's own mode: a link to an executable is an extension too.
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			files = append(files, path)
		}
	}
	return files, nil
}

// bootstrapCandidates are the places the runtime is looked for, in order.
func (c Config) bootstrapCandidates() []string {
	if c.Bootstrap != "" {
		return []string{c.Bootstrap}
	}
	paths := []string{filepath.Join(c.TaskDir, "bootstrap")}
	if c.ExtensionsDir != "" {
		paths = append(paths, filepath.Join(filepath.Dir(filepath.Clean(c.ExtensionsDir)), "bootstrap"))
	}
	return paths
}

func findBootstrap(paths []string) (string, bool) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
