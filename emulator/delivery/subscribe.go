package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// API is the interface a subscription came through.
type API int

// The two subscription APIs.
const (
	Telemetry API = iota // PUT /2022-07-01/telemetry
	Logs                 // PUT /2020-08-15/logs
)

func (a API) String() string {
	if a == Logs {
		return "Logs API"
	}
	return "Telemetry API"
}

// errorPrefix is the errorType prefix of the API's answers ("ValidationError" for the
// Telemetry API, "Logs.ValidationError" for the Logs API, as the guide prints them).
func (a API) errorPrefix() string {
	if a == Logs {
		return "Logs."
	}
	return ""
}

// Buffering limits, the same for both APIs.
const (
	MinMaxItems, DefaultMaxItems, MaxMaxItems    = 1000, 10000, 10000
	MinMaxBytes, DefaultMaxBytes, MaxMaxBytes    = 262144, 262144, 1048576
	MinTimeoutMs, DefaultTimeoutMs, MaxTimeoutMs = 25, 1000, 30000
	// ReservedPort is Lambda's own; no destination may use it.
	ReservedPort = 9001
)

// Schema versions each API accepts; the first Logs API version is its default.
var (
	telemetrySchemas = []string{"2022-07-01", "2022-12-13"}
	logsSchemas      = []string{"2020-08-15", "2021-03-18"}
)

// Request is a subscribe request body of either API.
type Request struct {
	SchemaVersion string       `json:"schemaVersion"`
	Destination   *Destination `json:"destination"`
	Types         []string     `json:"types"`
	Buffering     *Buffering   `json:"buffering"`
}

// Destination is where events go. TCP destinations may give a URI ("host:port" or
// "tcp://host:port") or, as newer platform versions describe them, a port.
type Destination struct {
	Protocol string `json:"protocol"`
	URI      string `json:"URI"`
	Port     *int   `json:"port"`
}

// Buffering is a subscriber's batching; omitted fields take their defaults.
type Buffering struct {
	MaxItems  *int `json:"maxItems"`
	MaxBytes  *int `json:"maxBytes"`
	TimeoutMs *int `json:"timeoutMs"`
}

// config is a validated subscription.
type config struct {
	api      API
	schema   string
	types    []string
	protocol string
	// url is the HTTP destination as given; addr is where to connect (loopback).
	url      string
	addr     string
	maxItems int
	maxBytes int
	timeout  time.Duration
}

// validate checks a subscribe request and returns the subscription or every problem found,
// in the words of the guide's example ("URI port is not provided; types should not be empty").
func validate(api API, body []byte) (config, []string) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return config{}, []string{"request body is not a valid subscription JSON object: " + err.Error()}
	}
	c := config{api: api, schema: req.SchemaVersion}
	var problems []string
	switch {
	case api == Telemetry && !slices.Contains(telemetrySchemas, c.schema):
		problems = append(problems, fmt.Sprintf("schemaVersion %q is not supported: use %s", c.schema, strings.Join(telemetrySchemas, " or ")))
	case api == Logs && c.schema == "":
		c.schema = logsSchemas[0]
	case api == Logs && !slices.Contains(logsSchemas, c.schema):
		problems = append(problems, fmt.Sprintf("schemaVersion %q is not supported: use %s", c.schema, strings.Join(logsSchemas, " or ")))
	}
	problems = append(problems, c.destination(req.Destination)...)
	if len(req.Types) == 0 {
		problems = append(problems, "types should not be empty")
	}
	for _, t := range req.Types {
		if t != "platform" && t != "function" && t != "extension" {
			problems = append(problems, fmt.Sprintf("type %q is not one of platform, function, extension", t))
		} else if !slices.Contains(c.types, t) {
			c.types = append(c.types, t)
		}
	}
	b := req.Buffering
	if b == nil {
		b = &Buffering{}
	}
	var timeoutMs int
	problems = appendRange(problems, "buffering.maxItems", b.MaxItems, MinMaxItems, DefaultMaxItems, MaxMaxItems, &c.maxItems)
	problems = appendRange(problems, "buffering.maxBytes", b.MaxBytes, MinMaxBytes, DefaultMaxBytes, MaxMaxBytes, &c.maxBytes)
	problems = appendRange(problems, "buffering.timeoutMs", b.TimeoutMs, MinTimeoutMs, DefaultTimeoutMs, MaxTimeoutMs, &timeoutMs)
	c.timeout = time.Duration(timeoutMs) * time.Millisecond
	return c, problems
}

func appendRange(problems []string, name string, v *int, lo, def, hi int, dst *int) []string {
	*dst = def
	if v == nil {
		return problems
	}
	if *v < lo || *v > hi {
		return append(problems, fmt.Sprintf("%s must be between %d and %d, got %d", name, lo, hi, *v))
	}
	*dst = *v
	return problems
}

func (c *config) destination(d *Destination) []string {
	if d == nil {
		return []string{"destination is not provided"}
	}
	c.protocol = d.Protocol
	switch d.Protocol {
	case "HTTP":
		return c.httpDestination(d.URI)
	case "TCP":
		return c.tcpDestination(d)
	default:
		return []string{fmt.Sprintf("destination.protocol %q is not HTTP or TCP", d.Protocol)}
	}
}

func (c *config) httpDestination(uri string) []string {
	if uri == "" {
		return []string{"URI is not provided"}
	}
	u, err := url.Parse(uri)
	if err != nil {
		return []string{fmt.Sprintf("URI %q is not a valid URI", uri)}
	}
	if u.Scheme != "http" {
		return []string{fmt.Sprintf("URI scheme must be http (HTTPS is not supported), got %q", u.Scheme)}
	}
	c.url = uri
	return c.hostPort(u.Hostname(), u.Port())
}

func (c *config) tcpDestination(d *Destination) []string {
	if d.Port != nil && d.URI == "" {
		return c.hostPort("sandbox.localdomain", strconv.Itoa(*d.Port))
	}
	if d.URI == "" {
		return []string{"URI is not provided"}
	}
	hostport := strings.TrimPrefix(d.URI, "tcp://")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return []string{"URI port is not provided"}
	}
	return c.hostPort(host, port)
}

// hostPort accepts only hosts inside the execution environment, which locally is loopback.
func (c *config) hostPort(host, port string) []string {
	var problems []string
	if !insideSandbox(host) {
		problems = append(problems, fmt.Sprintf("URI host %q is outside the execution environment: use sandbox.localdomain", host))
	}
	n, err := strconv.Atoi(port)
	switch {
	case port == "":
		problems = append(problems, "URI port is not provided")
	case err != nil || n < 1 || n > 65535:
		problems = append(problems, fmt.Sprintf("URI port %q is not a port number", port))
	case n == ReservedPort:
		problems = append(problems, "URI port 9001 is reserved by Lambda")
	}
	c.addr = net.JoinHostPort("127.0.0.1", port)
	return problems
}

func insideSandbox(host string) bool {
	switch host {
	case "sandbox.localdomain", "sandbox", "localhost":
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrorDocument is the Lambda APIs' error answer, {"errorType","errorMessage"}.
func ErrorDocument(errorType, message string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{errorType, message})
	return b
}

// accepts reports whether a subscriber with this configuration receives events of type typ.
func (c *config) accepts(typ string) bool {
	if !slices.Contains(c.types, Category(typ)) {
		return false
	}
	switch typ {
	case TypeEnd, TypeFault, TypeLogsSubscription:
		return c.api == Logs
	case TypeInitStart, TypeTelemetrySubscription:
		return c.api == Telemetry
	case TypeRuntimeDone:
		return c.api == Telemetry || c.schema == "2021-03-18"
	}
	return true
}

// objects reports whether the subscriber receives JSON log lines as objects.
func (c *config) objects() bool { return c.api == Telemetry && c.schema == "2022-12-13" }
