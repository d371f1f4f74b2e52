package exporters

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables read here, besides the OTEL_EXPORTER_OTLP_* family.
const (
	EnvExporters  = "LAMBDA_OTEL_EXPORTERS"
	EnvExportFile = "LAMBDA_OTEL_EXPORT_FILE"
)

// Exporter names of LAMBDA_OTEL_EXPORTERS.
const (
	NameOTLP    = "otlp"
	NameFile    = "file"
	NameConsole = "console"
)

// Defaults of the OTLP exporter, as the OpenTelemetry specification sets them.
const (
	defaultHTTPEndpoint = "http://localhost:4318"
	defaultGRPCEndpoint = "http://localhost:4317"
	defaultTimeout      = 10 * time.Second
	// DefaultExportFile is where the file exporter writes: /tmp is the only writable
	// directory in Lambda.
	DefaultExportFile = "/tmp/lambda-otel.jsonl"
)

// Config chooses and configures the exporters.
type Config struct {
	// Exporters are the names of the exporters to run, in order.
	Exporters []string
	// FilePath is the file exporter's output.
	FilePath string
	// OTLP holds the OTLP exporter's target for each signal.
	OTLP [numSignals]Target
}

// DefaultConfig is the configuration with nothing set: OTLP/HTTP protobuf to
// localhost:4318.
func DefaultConfig() Config {
	c := Config{Exporters: []string{NameOTLP}, FilePath: DefaultExportFile}
	for _, sig := range Signals {
		c.OTLP[sig] = Target{Protocol: HTTPProtobuf, URL: defaultHTTPEndpoint + signalInfo[sig].path, Timeout: defaultTimeout}
	}
	return c
}

// LoadConfig reads the configuration from lookup (os.LookupEnv in production). A bad value
// is reported in the returned error, naming the variable and its valid values, and the
// default is used instead. Header values are never quoted in errors: they hold secrets.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) (string, bool) {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	var errs []error
	c := DefaultConfig()
	if s, ok := get(EnvExporters); ok {
		names, err := parseExporters(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not valid: %w; want a comma-separated list of %q, %q, %q, or \"none\"; using the default otlp", EnvExporters, s, err, NameOTLP, NameFile, NameConsole))
		} else {
			c.Exporters = names
		}
	}
	if s, ok := get(EnvExportFile); ok {
		c.FilePath = s
	}
	for _, sig := range Signals {
		t, err := loadTarget(get, sig)
		errs = appendUnique(errs, err)
		c.OTLP[sig] = t
	}
	return c, errors.Join(errs...)
}

// appendUnique adds the errors err joins that errs does not hold yet: a bad
// OTEL_EXPORTER_OTLP_X is read once per signal and must be reported once.
func appendUnique(errs []error, err error) []error {
	if err == nil {
		return errs
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = appendUnique(errs, e)
		}
		return errs
	}
	if slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
		return errs
	}
	return append(errs, err)
}

func parseExporters(s string) ([]string, error) {
	if strings.EqualFold(s, "none") {
		return []string{}, nil
	}
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		name := strings.ToLower(strings.TrimSpace(part))
		if name != NameOTLP && name != NameFile && name != NameConsole {
			return nil, fmt.Errorf("unknown exporter %q", strings.TrimSpace(part))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// loadTarget reads one signal's settings: OTEL_EXPORTER_OTLP_<SIGNAL>_X wins over
// OTEL_EXPORTER_OTLP_X.
func loadTarget(get func(string) (string, bool), sig Signal) (Target, error) {
	var errs []error
	bad := func(name, value, want, def string) {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: want %s; using %s", name, value, want, def))
	}
	signalVar := "OTEL_EXPORTER_OTLP_" + strings.ToUpper(sig.String()) + "_"
	setting := func(suffix string) (name, value string, ok bool, perSignal bool) {
		if v, ok := get(signalVar + suffix); ok {
			return signalVar + suffix, v, true, true
		}
		v, ok := get("OTEL_EXPORTER_OTLP_" + suffix)
		return "OTEL_EXPORTER_OTLP_" + suffix, v, ok, false
	}

	t := Target{Protocol: HTTPProtobuf, Timeout: defaultTimeout}
	if name, v, ok, _ := setting("PROTOCOL"); ok {
		switch p := Protocol(strings.ToLower(v)); p {
		case HTTPProtobuf, HTTPJSON, GRPC:
			t.Protocol = p
		default:
			bad(name, v, `"http/protobuf", "http/json" or "grpc"`, "http/protobuf")
		}
	}

	name, endpoint, ok, perSignal := setting("ENDPOINT")
	if !ok {
		endpoint = defaultHTTPEndpoint
		if t.Protocol == GRPC {
			endpoint = defaultGRPCEndpoint
		}
	}
	insecure := false
	if iname, v, ok, _ := setting("INSECURE"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(iname, v, `"true" or "false"`, "false")
		}
		insecure = b
	}
	u, err := targetURL(endpoint, t.Protocol, sig, perSignal, insecure)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: %w; nothing is exported to it", name, endpoint, err))
	}
	t.URL = u

	if name, v, ok, _ := setting("HEADERS"); ok {
		h, err := parseHeaders(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is not valid: %w; want comma-separated key=value pairs with percent-encoded values; sending no headers", name, err))
		}
		t.Headers = h
	}
	if name, v, ok, _ := setting("COMPRESSION"); ok {
		switch strings.ToLower(v) {
		case "gzip":
			t.Gzip = true
		case "none":
		default:
			bad(name, v, `"gzip" or "none"`, "none")
		}
	}
	if name, v, ok, _ := setting("TIMEOUT"); ok {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			bad(name, v, "a positive number of milliseconds", "10000")
		} else {
			t.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	tlsCfg, err := loadTLS(setting)
	if err != nil {
		errs = append(errs, err)
	}
	t.TLS = tlsCfg
	return t, errors.Join(errs...)
}

// targetURL applies the specification's rules: for OTLP/HTTP the generic endpoint is a
// base to which /v1/<signal> is appended, while a per-signal endpoint is used as it is;
// for gRPC an endpoint without a scheme is plaintext only when insecure is set.
func targetURL(endpoint string, p Protocol, sig Signal, perSignal, insecure bool) (string, error) {
	if p == GRPC && !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if insecure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", errors.New("want an http:// or https:// URL with a host")
	}
	if p != GRPC && !perSignal {
		u.Path = strings.TrimSuffix(u.Path, "/") + signalInfo[sig].path
	}
	return u.String(), nil
}

// parseHeaders reads "k1=v1,k2=v2" with percent-encoded values. Errors name the entry's
// position, never its value.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not percent-encoded properly", k)
		}
		h[k] = dv
	}
	return h, nil
}

// loadTLS builds the TLS settings from the certificate variables; nil when none is set.
func loadTLS(setting func(string) (string, string, bool, bool)) (*tls.Config, error) {
	caName, ca, hasCA, _ := setting("CERTIFICATE")
	certName, cert, hasCert, _ := setting("CLIENT_CERTIFICATE")
	keyName, key, hasKey, _ := setting("CLIENT_KEY")
	if !hasCA && !hasCert && !hasKey {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if hasCA {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the CA certificate: %w; using the system's roots", caName, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%q holds no PEM certificate; using the system's roots", caName, ca)
		}
		cfg.RootCAs = pool
	}
	if hasCert != hasKey {
		return cfg, fmt.Errorf("%s and %s must be set together; no client certificate is used", certName, keyName)
	}
	if hasCert {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return cfg, fmt.Errorf("%s and %s: loading the client certificate: %w", certName, keyName, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// New builds the configured exporters. console writes to w. A file exporter whose file
// cannot be opened is left out, with the error returned.
func New(c Config, w io.Writer) ([]Exporter, error) {
	var exps []Exporter
	var errs []error
	for _, name := range c.Exporters {
		switch name {
		case NameOTLP:
			exps = append(exps, NewOTLP(c.OTLP))
		case NameFile:
			f, err := NewFile(c.FilePath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			exps = append(exps, f)
		case NameConsole:
			exps = append(exps, NewConsole(w))
		}
	}
	return exps, errors.Join(errs...)
}
