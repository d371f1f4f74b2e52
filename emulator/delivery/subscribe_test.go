package delivery

import (
	"encoding/json"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The request bodies of the guide's examples, as valid JSON: the Telemetry API example
// writes maxBytes as 256*1024, which no JSON decoder accepts.
const (
	telemetryExample = `{
  "schemaVersion": "2022-12-13",
  "types": ["platform", "function", "extension"],
  "buffering": { "maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100 },
  "destination": { "protocol": "HTTP", "URI": "http://sandbox.localdomain:8080" }
}`
	logsExample = `{
  "schemaVersion": "2020-08-15",
  "types": ["platform", "function"],
  "buffering": { "maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100 },
  "destination": { "protocol": "HTTP", "URI": "http://sandbox.localdomain:8080/lambda_logs" }
}`
	// guideErrorExample is a request that earns the guide's error example.
	guideErrorExample = `{
  "schemaVersion": "2022-12-13",
  "types": [],
  "destination": { "protocol": "HTTP", "URI": "http://sandbox.localdomain" }
}`
)

// fields are top-level fields of a request body.
type fields map[string]any

// body returns a valid Telemetry API request (schema 2022-12-13, platform events to
// http://sandbox.localdomain:8080) with over's fields replacing its own; a nil value removes
// the field.
func body(over fields) string {
	req := fields{
		"schemaVersion": "2022-12-13",
		"types":         []string{"platform"},
		"destination":   httpTo("http://sandbox.localdomain:8080"),
	}
	for k, v := range over {
		if v == nil {
			delete(req, k)
		} else {
			req[k] = v
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// httpTo is an HTTP destination.
func httpTo(uri string) fields { return fields{"protocol": "HTTP", "URI": uri} }

// accepted is the configuration body(nil) yields, changed by edit.
func accepted(edit func(*config)) *config {
	c := &config{
		api: Telemetry, schema: "2022-12-13", types: []string{"platform"},
		protocol: "HTTP", url: "http://sandbox.localdomain:8080", addr: "127.0.0.1:8080",
		maxItems: DefaultMaxItems, maxBytes: DefaultMaxBytes, timeout: DefaultTimeoutMs * time.Millisecond,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// tcp makes an accepted configuration a TCP one reaching loopback port 8080.
func tcp(c *config) { c.protocol, c.url = "TCP", "" }

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		api  API
		body string
		// want is every problem, in order; cfg is the subscription when there are none (a
		// rejected request's config is never used).
		want []string
		cfg  *config
	}{
		// The guide's examples.
		{name: "telemetry example", api: Telemetry, body: telemetryExample, cfg: accepted(func(c *config) {
			c.types = []string{"platform", "function", "extension"}
			c.maxItems, c.maxBytes, c.timeout = 1000, 262144, 100*time.Millisecond
		})},
		{name: "logs example", api: Logs, body: logsExample, cfg: accepted(func(c *config) {
			c.api, c.schema, c.types = Logs, "2020-08-15", []string{"platform", "function"}
			c.url = "http://sandbox.localdomain:8080/lambda_logs"
			c.maxItems, c.maxBytes, c.timeout = 1000, 262144, 100*time.Millisecond
		})},
		{name: "telemetry guide error", api: Telemetry, body: guideErrorExample,
			want: []string{"URI port is not provided", "types should not be empty"}},
		{name: "logs guide error", api: Logs, body: guideErrorExample,
			want: []string{`schemaVersion "2022-12-13" is not supported: use 2020-08-15 or 2021-03-18`, "URI port is not provided", "types should not be empty"}},
		{name: "telemetry example as printed", api: Telemetry, body: strings.Replace(telemetryExample, "262144", "256*1024", 1),
			want: []string{"request body is not a valid subscription JSON object: invalid character '*' after object key:value pair"}},

		// schemaVersion.
		{name: "telemetry 2022-12-13", api: Telemetry, body: body(nil), cfg: accepted(nil)},
		{name: "telemetry 2022-07-01", api: Telemetry, body: body(fields{"schemaVersion": "2022-07-01"}),
			cfg: accepted(func(c *config) { c.schema = "2022-07-01" })},
		{name: "telemetry without schemaVersion", api: Telemetry, body: body(fields{"schemaVersion": nil}),
			want: []string{`schemaVersion "" is not supported: use 2022-07-01 or 2022-12-13`}},
		{name: "telemetry with a Logs API schemaVersion", api: Telemetry, body: body(fields{"schemaVersion": "2020-08-15"}),
			want: []string{`schemaVersion "2020-08-15" is not supported: use 2022-07-01 or 2022-12-13`}},
		{name: "logs without schemaVersion", api: Logs, body: body(fields{"schemaVersion": nil}),
			cfg: accepted(func(c *config) { c.api, c.schema = Logs, "2020-08-15" })},
		{name: "logs 2021-03-18", api: Logs, body: body(fields{"schemaVersion": "2021-03-18"}),
			cfg: accepted(func(c *config) { c.api, c.schema = Logs, "2021-03-18" })},
		{name: "logs with a Telemetry API schemaVersion", api: Logs, body: body(nil),
			want: []string{`schemaVersion "2022-12-13" is not supported: use 2020-08-15 or 2021-03-18`}},

		// destination.
		{name: "no destination", api: Telemetry, body: body(fields{"destination": nil}),
			want: []string{"destination is not provided"}},
		{name: "no protocol", api: Telemetry, body: body(fields{"destination": fields{"URI": "http://sandbox.localdomain:8080"}}),
			want: []string{`destination.protocol "" is not HTTP or TCP`}},
		{name: "HTTPS protocol", api: Telemetry, body: body(fields{"destination": fields{"protocol": "HTTPS", "URI": "https://sandbox.localdomain:8080"}}),
			want: []string{`destination.protocol "HTTPS" is not HTTP or TCP`}},
		{name: "HTTP without URI", api: Telemetry, body: body(fields{"destination": fields{"protocol": "HTTP"}}),
			want: []string{"URI is not provided"}},
		{name: "HTTP URI that does not parse", api: Telemetry, body: body(fields{"destination": httpTo("http://sandbox.localdomain:80a")}),
			want: []string{`URI "http://sandbox.localdomain:80a" is not a valid URI`}},
		{name: "https scheme", api: Telemetry, body: body(fields{"destination": httpTo("https://sandbox.localdomain:8080")}),
			want: []string{`URI scheme must be http (HTTPS is not supported), got "https"`}},
		{name: "host outside the environment", api: Telemetry, body: body(fields{"destination": httpTo("http://example.com:8080")}),
			want: []string{`URI host "example.com" is outside the execution environment: use sandbox.localdomain`}},
		{name: "localhost", api: Telemetry, body: body(fields{"destination": httpTo("http://localhost:8080/")}),
			cfg: accepted(func(c *config) { c.url = "http://localhost:8080/" })},
		{name: "loopback IPv4", api: Telemetry, body: body(fields{"destination": httpTo("http://127.1.2.3:8080")}),
			cfg: accepted(func(c *config) { c.url = "http://127.1.2.3:8080" })},
		{name: "loopback IPv6", api: Telemetry, body: body(fields{"destination": httpTo("http://[::1]:8080")}),
			cfg: accepted(func(c *config) { c.url = "http://[::1]:8080" })},
		{name: "port missing", api: Telemetry, body: body(fields{"destination": httpTo("http://sandbox.localdomain/telemetry")}),
			want: []string{"URI port is not provided"}},
		{name: "host and port wrong", api: Telemetry, body: body(fields{"destination": httpTo("http://example.com")}),
			want: []string{`URI host "example.com" is outside the execution environment: use sandbox.localdomain`, "URI port is not provided"}},
		{name: "reserved port", api: Telemetry, body: body(fields{"destination": httpTo("http://sandbox.localdomain:9001")}),
			want: []string{"URI port 9001 is reserved by Lambda"}},
		{name: "port 0", api: Telemetry, body: body(fields{"destination": httpTo("http://sandbox.localdomain:0")}),
			want: []string{`URI port "0" is not a port number`}},
		{name: "port above 65535", api: Telemetry, body: body(fields{"destination": httpTo("http://sandbox.localdomain:70000")}),
			want: []string{`URI port "70000" is not a port number`}},
		{name: "TCP host:port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "URI": "sandbox.localdomain:8080"}}),
			cfg: accepted(tcp)},
		{name: "TCP tcp://host:port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "URI": "tcp://sandbox.localdomain:8080"}}),
			cfg: accepted(tcp)},
		{name: "TCP port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "port": 8080}}),
			cfg: accepted(tcp)},
		{name: "TCP port through the Logs API", api: Logs, body: body(fields{"schemaVersion": nil, "destination": fields{"protocol": "TCP", "port": 8080}}),
			cfg: accepted(func(c *config) { tcp(c); c.api, c.schema = Logs, "2020-08-15" })},
		{name: "TCP reserved port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "port": 9001}}),
			want: []string{"URI port 9001 is reserved by Lambda"}},
		{name: "TCP port 0", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "port": 0}}),
			want: []string{`URI port "0" is not a port number`}},
		{name: "TCP URI without port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "URI": "tcp://sandbox.localdomain"}}),
			want: []string{"URI port is not provided"}},
		{name: "TCP URI with empty port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "URI": "sandbox.localdomain:"}}),
			want: []string{"URI port is not provided"}},
		{name: "TCP host outside the environment", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP", "URI": "example.com:8080"}}),
			want: []string{`URI host "example.com" is outside the execution environment: use sandbox.localdomain`}},
		{name: "TCP without URI or port", api: Telemetry, body: body(fields{"destination": fields{"protocol": "TCP"}}),
			want: []string{"URI is not provided"}},

		// types.
		{name: "types empty", api: Telemetry, body: body(fields{"types": []string{}}),
			want: []string{"types should not be empty"}},
		{name: "types missing", api: Telemetry, body: body(fields{"types": nil}),
			want: []string{"types should not be empty"}},
		{name: "unknown type", api: Telemetry, body: body(fields{"types": []string{"platform", "logs"}}),
			want: []string{`type "logs" is not one of platform, function, extension`}},
		{name: "duplicate types collapse", api: Telemetry, body: body(fields{"types": []string{"function", "platform", "function", "platform"}}),
			cfg: accepted(func(c *config) { c.types = []string{"function", "platform"} })},

		// buffering.
		{name: "buffering empty", api: Telemetry, body: body(fields{"buffering": fields{}}), cfg: accepted(nil)},
		{name: "buffering partial", api: Telemetry, body: body(fields{"buffering": fields{"timeoutMs": 100}}),
			cfg: accepted(func(c *config) { c.timeout = 100 * time.Millisecond })},
		{name: "maxItems below min", api: Telemetry, body: body(fields{"buffering": fields{"maxItems": 999}}),
			want: []string{"buffering.maxItems must be between 1000 and 10000, got 999"}},
		{name: "maxItems min", api: Telemetry, body: body(fields{"buffering": fields{"maxItems": 1000}}),
			cfg: accepted(func(c *config) { c.maxItems = 1000 })},
		{name: "maxItems max", api: Telemetry, body: body(fields{"buffering": fields{"maxItems": 10000}}),
			cfg: accepted(func(c *config) { c.maxItems = 10000 })},
		{name: "maxItems above max", api: Telemetry, body: body(fields{"buffering": fields{"maxItems": 10001}}),
			want: []string{"buffering.maxItems must be between 1000 and 10000, got 10001"}},
		{name: "maxBytes below min", api: Telemetry, body: body(fields{"buffering": fields{"maxBytes": 262143}}),
			want: []string{"buffering.maxBytes must be between 262144 and 1048576, got 262143"}},
		{name: "maxBytes max", api: Telemetry, body: body(fields{"buffering": fields{"maxBytes": 1048576}}),
			cfg: accepted(func(c *config) { c.maxBytes = 1048576 })},
		{name: "maxBytes above max", api: Telemetry, body: body(fields{"buffering": fields{"maxBytes": 1048577}}),
			want: []string{"buffering.maxBytes must be between 262144 and 1048576, got 1048577"}},
		{name: "timeoutMs below min", api: Telemetry, body: body(fields{"buffering": fields{"timeoutMs": 24}}),
			want: []string{"buffering.timeoutMs must be between 25 and 30000, got 24"}},
		{name: "timeoutMs min", api: Telemetry, body: body(fields{"buffering": fields{"timeoutMs": 25}}),
			cfg: accepted(func(c *config) { c.timeout = 25 * time.Millisecond })},
		{name: "timeoutMs max", api: Telemetry, body: body(fields{"buffering": fields{"timeoutMs": 30000}}),
			cfg: accepted(func(c *config) { c.timeout = 30 * time.Second })},
		{name: "timeoutMs above max", api: Telemetry, body: body(fields{"buffering": fields{"timeoutMs": 30001}}),
			want: []string{"buffering.timeoutMs must be between 25 and 30000, got 30001"}},

		// Every rule broken at once: the problems come in the order of the fields.
		{name: "every problem", api: Telemetry, body: body(fields{
			"schemaVersion": "2021-03-18",
			"destination":   fields{"protocol": "UDP"},
			"types":         []string{"logs", "metrics"},
			"buffering":     fields{"maxItems": 1, "maxBytes": 1, "timeoutMs": 1},
		}), want: []string{
			`schemaVersion "2021-03-18" is not supported: use 2022-07-01 or 2022-12-13`,
			`destination.protocol "UDP" is not HTTP or TCP`,
			`type "logs" is not one of platform, function, extension`,
			`type "metrics" is not one of platform, function, extension`,
			"buffering.maxItems must be between 1000 and 10000, got 1",
			"buffering.maxBytes must be between 262144 and 1048576, got 1",
			"buffering.timeoutMs must be between 25 and 30000, got 1",
		}},

		// Bodies that are not a subscription object.
		{name: "truncated JSON", api: Telemetry, body: `{`,
			want: []string{"request body is not a valid subscription JSON object: unexpected EOF"}},
		{name: "types not an array", api: Logs, body: `{"types":"platform"}`,
			want: []string{"request body is not a valid subscription JSON object: json: cannot unmarshal string into Go struct field Request.types of type []string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, problems := validate(tt.api, []byte(tt.body))
			if got, want := strings.Join(problems, "; "), strings.Join(tt.want, "; "); got != want {
				t.Errorf("problems:\n got %q\nwant %q", got, want)
			}
			if tt.cfg != nil && !reflect.DeepEqual(cfg, *tt.cfg) {
				t.Errorf("config:\n got %+v\nwant %+v", cfg, *tt.cfg)
			}
		})
	}
}

// allTypes is every event type the hub publishes.
var allTypes = []string{
	TypeInitStart, TypeInitRuntimeDone, TypeInitReport, TypeStart, TypeRuntimeDone, TypeReport,
	TypeExtension, TypeTelemetrySubscription, TypeLogsDropped, TypeFunction, TypeExtensionLog,
	TypeEnd, TypeFault, TypeLogsSubscription,
}

func TestAccepts(t *testing.T) {
	// Platform events both APIs share.
	common := []string{TypeInitRuntimeDone, TypeInitReport, TypeStart, TypeReport, TypeExtension, TypeLogsDropped}
	tests := []struct {
		name   string
		cfg    config
		accept []string
	}{
		{"telemetry 2022-12-13 everything",
			config{api: Telemetry, schema: "2022-12-13", types: []string{"platform", "function", "extension"}},
			append(slices.Clone(common), TypeInitStart, TypeRuntimeDone, TypeTelemetrySubscription, TypeFunction, TypeExtensionLog)},
		{"telemetry 2022-07-01 platform",
			config{api: Telemetry, schema: "2022-07-01", types: []string{"platform"}},
			append(slices.Clone(common), TypeInitStart, TypeRuntimeDone, TypeTelemetrySubscription)},
		{"telemetry function", config{api: Telemetry, schema: "2022-12-13", types: []string{"function"}}, []string{TypeFunction}},
		{"telemetry extension", config{api: Telemetry, schema: "2022-12-13", types: []string{"extension"}}, []string{TypeExtensionLog}},
		{"logs 2020-08-15 everything",
			config{api: Logs, schema: "2020-08-15", types: []string{"platform", "function", "extension"}},
			append(slices.Clone(common), TypeEnd, TypeFault, TypeLogsSubscription, TypeFunction, TypeExtensionLog)},
		{"logs 2021-03-18 platform",
			config{api: Logs, schema: "2021-03-18", types: []string{"platform"}},
			append(slices.Clone(common), TypeRuntimeDone, TypeEnd, TypeFault, TypeLogsSubscription)},
		{"logs function and extension",
			config{api: Logs, schema: "2021-03-18", types: []string{"function", "extension"}},
			[]string{TypeFunction, TypeExtensionLog}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, typ := range allTypes {
				if got, want := tt.cfg.accepts(typ), slices.Contains(tt.accept, typ); got != want {
					t.Errorf("accepts(%s) = %v, want %v", typ, got, want)
				}
			}
		})
	}
}

func FuzzSubscribe(f *testing.F) {
	for _, seed := range []string{
		telemetryExample, logsExample, guideErrorExample,
		body(fields{"destination": fields{"protocol": "TCP", "URI": "tcp://sandbox.localdomain:8080"}}),
		body(fields{"destination": fields{"protocol": "TCP", "port": 8080}}),
		body(fields{"destination": httpTo("http://[::1]:9001/x")}),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, api := range []API{Telemetry, Logs} {
			cfg, problems := validate(api, b)
			if len(problems) > 0 {
				if slices.Contains(problems, "") {
					t.Errorf("%s: an empty problem among %q", api, problems)
				}
				continue
			}
			checkConfig(t, api, cfg)
		}
	})
}

// checkConfig fails the test unless cfg is a subscription the hub can serve: limits in
// range, a known schema and protocol, types without repeats, and a loopback address.
func checkConfig(t *testing.T, api API, cfg config) {
	t.Helper()
	if cfg.api != api {
		t.Errorf("api %v, want %v", cfg.api, api)
	}
	schemas := map[API][]string{Telemetry: telemetrySchemas, Logs: logsSchemas}[api]
	if !slices.Contains(schemas, cfg.schema) {
		t.Errorf("%s: schema %q", api, cfg.schema)
	}
	if cfg.maxItems < MinMaxItems || cfg.maxItems > MaxMaxItems {
		t.Errorf("%s: maxItems %d", api, cfg.maxItems)
	}
	if cfg.maxBytes < MinMaxBytes || cfg.maxBytes > MaxMaxBytes {
		t.Errorf("%s: maxBytes %d", api, cfg.maxBytes)
	}
	if cfg.timeout < MinTimeoutMs*time.Millisecond || cfg.timeout > MaxTimeoutMs*time.Millisecond {
		t.Errorf("%s: timeout %v", api, cfg.timeout)
	}
	if len(cfg.types) == 0 || len(cfg.types) > 3 {
		t.Errorf("%s: types %q", api, cfg.types)
	}
	seen := map[string]bool{}
	for _, typ := range cfg.types {
		if seen[typ] || (typ != "platform" && typ != "function" && typ != "extension") {
			t.Errorf("%s: types %q", api, cfg.types)
		}
		seen[typ] = true
	}
	switch cfg.protocol {
	case "HTTP":
		if u, err := url.Parse(cfg.url); err != nil || u.Scheme != "http" {
			t.Errorf("%s: HTTP destination %q", api, cfg.url)
		}
	case "TCP":
	default:
		t.Errorf("%s: protocol %q", api, cfg.protocol)
	}
	host, port, err := net.SplitHostPort(cfg.addr)
	n, perr := strconv.Atoi(port)
	if err != nil || host != "127.0.0.1" || perr != nil || n < 1 || n > 65535 || n == ReservedPort {
		t.Errorf("%s: addr %q", api, cfg.addr)
	}
	if t.Failed() {
		t.Logf("config %+v", cfg)
	}
}
