package exporters

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
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

// The families of exporter variables. The function's own OpenTelemetry SDK reads
// OTEL_EXPORTER_OTLP_* too, since Lambda gives every process the same environment, and
// would then send straight to the backend, past the extension's local receiver. Setting
// any variable of the extension's own family, LAMBDA_OTEL_EXPORTER_OTLP_* (the same names
// behind "LAMBDA_"), makes the extension read that family alone, and leaves
// OTEL_EXPORTER_OTLP_* to the SDK, which sends to localhost:4318 when they are unset.
const (
	FamilyOTel      = "OTEL_EXPORTER_OTLP_"
	FamilyExtension = "LAMBDA_" + FamilyOTel
)

// settingSuffixes are the exporter variables of a family, after its prefix, generic and
// per signal.
var settingSuffixes = []string{"PROTOCOL", "ENDPOINT", "INSECURE", "HEADERS", "COMPRESSION", "TIMEOUT", "CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"}

// Family returns the prefix of the exporter variables the extension reads from lookup.
func Family(lookup func(string) (string, bool)) string {
	for _, suffix := range settingSuffixes {
		for _, scope := range []string{"", "TRACES_", "LOGS_", "METRICS_"} {
			if v, ok := lookup(FamilyExtension + scope + suffix); ok && strings.TrimSpace(v) != "" {
				return FamilyExtension
			}
		}
	}
	return FamilyOTel
}

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
	// maxPEMBytes bounds a certificate or key file: a CA bundle is a few hundred KiB.
	maxPEMBytes = 1 << 20
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
// default is used instead. Header values are never quoted in errors: they hold secrets;
// nor are the credentials of an endpoint's user:password@, which become an Authorization
// header, so that the URLs that error messages quote hold none.
//
// TLS is always verified: https endpoints are checked against the system's roots, plus
// OTEL_EXPORTER_OTLP_CERTIFICATE's CA when it is set. No variable turns verification off;
// OTEL_EXPORTER_OTLP_INSECURE only chooses plaintext (no TLS at all) for a gRPC endpoint
// written without a scheme, as the OpenTelemetry specification has it, and is ignored for
// an endpoint that says https://.
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
	tlsConfigs := map[[3]string]*tls.Config{}
	family := Family(lookup)
	for _, sig := range Signals {
		t, err := loadTarget(get, family, sig, tlsConfigs)
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

// loadTarget reads one signal's settings from family: <family><SIGNAL>_X wins over
// <family>X. Signals with the same certificate settings get the same *tls.Config from
// tlsConfigs, so that they can share connections.
func loadTarget(get func(string) (string, bool), family string, sig Signal, tlsConfigs map[[3]string]*tls.Config) (Target, error) {
	var errs []error
	bad := func(name, value, want, def string) {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: want %s; using %s", name, value, want, def))
	}
	signalVar := family + strings.ToUpper(sig.String()) + "_"
	setting := func(suffix string) (name, value string, ok bool, perSignal bool) {
		if v, ok := get(signalVar + suffix); ok {
			return signalVar + suffix, v, true, true
		}
		v, ok := get(family + suffix)
		return family + suffix, v, ok, false
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
	u, user, err := targetURL(endpoint, t.Protocol, sig, perSignal, insecure)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: %w; want an http:// or https:// URL; nothing is exported to it", name, redactEndpoint(endpoint), err))
	}
	t.URL = u

	if name, v, ok, _ := setting("HEADERS"); ok {
		h, err := parseHeaders(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is not valid: %w; want comma-separated key=value pairs with percent-encoded values; sending no headers", name, err))
		}
		t.Headers = h
	}
	if user != nil && !hasHeader(t.Headers, "Authorization") {
		// What net/http would send for the URL's user:password@, moved out of the URL.
		pw, _ := user.Password()
		if t.Headers == nil {
			t.Headers = map[string]string{}
		}
		t.Headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+pw))
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
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			bad(name, v, "a positive number of milliseconds", "10000")
		} else {
			// Beyond what a Duration holds, the product would wrap round to a negative
			// timeout that fails every attempt at once; such a timeout means no limit.
			t.Timeout = time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
		}
	}
	tlsCfg, err := loadTLS(setting, tlsConfigs)
	if err != nil {
		errs = append(errs, err)
	}
	t.TLS = tlsCfg
	return t, errors.Join(errs...)
}

// hasHeader reports whether h has a header named name, in any letter case.
func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// targetURL applies the specification's rules: for OTLP/HTTP the generic endpoint is a
// base to which /v1/<signal> is appended, while a per-signal endpoint is used as it is;
// for gRPC an endpoint without a scheme is plaintext only when insecure is set. The URL's
// user:password@ is returned apart and left out of the URL. Errors do not quote the
// endpoint, which may hold credentials.
func targetURL(endpoint string, p Protocol, sig Signal, perSignal, insecure bool) (string, *url.Userinfo, error) {
	if p == GRPC && !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if insecure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Error quotes the whole URL; keep only what is wrong with it.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", nil, errors.New("it is not an http:// or https:// URL with a host")
	}
	if p != GRPC && !perSignal {
		u.Path = strings.TrimSuffix(u.Path, "/") + signalInfo[sig].path
	}
	user := u.User
	u.User = nil
	return u.String(), user, nil
}

// redactEndpoint returns an endpoint fit for a message: without the user:password@ of its
// authority, which is found without parsing since the endpoint may not parse.
func redactEndpoint(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	return prefix + "[redacted]@" + rest[at+1:]
}

// parseHeaders reads "k1=v1,k2=v2" with percent-encoded values. Errors name the entry's
// position, or its key once the key is known to be a header name, never its value. A
// name or value HTTP does not allow is refused here, once, rather than failing every
// export.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		case !validHeaderName(k):
			return nil, fmt.Errorf("the key of entry %d is not an HTTP header name", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not percent-encoded properly", k)
		}
		if !validHeaderValue(dv) {
			return nil, fmt.Errorf("the value of %q has a control character, which HTTP does not allow", k)
		}
		h[k] = dv
	}
	return h, nil
}

// validHeaderName reports whether k is an HTTP field name: a token (RFC 9110, 5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether v can be sent as an HTTP field value, as net/http
// checks it: no control character but the horizontal tab.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// loadTLS builds the TLS settings from the certificate variables; nil when none is set,
// which verifies against the system's roots. A setting that fails is reported and left
// out, the others still apply. Settings already loaded for another signal are shared
// through loaded.
func loadTLS(setting func(string) (string, string, bool, bool), loaded map[[3]string]*tls.Config) (*tls.Config, error) {
	caName, ca, hasCA, _ := setting("CERTIFICATE")
	certName, cert, hasCert, _ := setting("CLIENT_CERTIFICATE")
	keyName, key, hasKey, _ := setting("CLIENT_KEY")
	if !hasCA && !hasCert && !hasKey {
		return nil, nil
	}
	if cfg, ok := loaded[[3]string{ca, cert, key}]; ok {
		return cfg, nil // its errors were reported with the signal that loaded it
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	loaded[[3]string{ca, cert, key}] = cfg
	var errs []error
	if hasCA {
		const want = "want a PEM file of CA certificates; using the system's roots"
		pem, err := readPEM(ca)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s=%q is not valid: %w; %s", caName, ca, err, want))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("%s=%q is not valid: it holds no PEM certificate; %s", caName, ca, want))
				break
			}
			cfg.RootCAs = pool
		}
	}
	const wantPair = "want PEM files of a certificate and its key, both or neither; no client certificate is used"
	switch {
	case hasCert != hasKey:
		errs = append(errs, fmt.Errorf("%s and %s must be set together: %s", certName, keyName, wantPair))
	case hasCert:
		pair, err := loadKeyPair(cert, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q and %s=%q are not valid: %w; %s", certName, cert, keyName, key, err, wantPair))
			break
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, errors.Join(errs...)
}

// loadKeyPair reads a client certificate and its key. The errors of tls.X509KeyPair say
// what is wrong without quoting the key.
func loadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	cert, err := readPEM(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading the certificate: %w", err)
	}
	key, err := readPEM(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading the key: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading the client certificate: %w", err)
	}
	return pair, nil
}

// readPEM reads a certificate or key file. It must be a regular file of at most
// maxPEMBytes: a device such as /dev/zero or /dev/stdin, or a FIFO, would otherwise hold
// the extension's start, and with it the function's init, or fill its memory.
func readPEM(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("it is not a regular file")
	}
	if fi.Size() > maxPEMBytes {
		return nil, fmt.Errorf("it holds %d bytes, more than %d", fi.Size(), maxPEMBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The size was checked before opening; the file may have grown since.
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("it holds more than %d bytes", maxPEMBytes)
	}
	return b, nil
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
				errs = append(errs, fmt.Errorf("%s=%q: %w; want a path in a writable directory such as /tmp; the file exporter is left out", EnvExportFile, c.FilePath, err))
				continue
			}
			exps = append(exps, f)
		case NameConsole:
			exps = append(exps, NewConsole(w))
		}
	}
	return exps, errors.Join(errs...)
}

// Validate reports every setting outside what LoadConfig produces, naming the variable
// that sets it; no header value is quoted. A Target's URL may be empty: its endpoint was
// not valid and nothing is sent to it.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, n := range c.Exporters {
		if n != NameOTLP && n != NameFile && n != NameConsole || seen[n] {
			errs = append(errs, fmt.Errorf("%s has %q, unknown or repeated", EnvExporters, n))
		}
		seen[n] = true
	}
	if c.FilePath == "" {
		errs = append(errs, fmt.Errorf("%s is empty", EnvExportFile))
	}
	for _, sig := range Signals {
		t := c.OTLP[sig]
		v := "OTEL_EXPORTER_OTLP_" + strings.ToUpper(sig.String()) + "_"
		if t.Protocol != HTTPProtobuf && t.Protocol != HTTPJSON && t.Protocol != GRPC {
			errs = append(errs, fmt.Errorf("%sPROTOCOL has %q", v, t.Protocol))
		}
		if t.URL != "" {
			u, err := url.Parse(t.URL)
			if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil {
				errs = append(errs, fmt.Errorf("%sENDPOINT gives %q, not an http:// or https:// URL with a host and no credentials", v, redactEndpoint(t.URL)))
			}
		}
		if t.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("%sTIMEOUT gives %v, not a positive time", v, t.Timeout))
		}
		for k, val := range t.Headers {
			if !validHeaderName(k) || !validHeaderValue(val) {
				errs = append(errs, fmt.Errorf("%sHEADERS has the header %q, which HTTP does not allow", v, k))
			}
		}
		if t.TLS != nil && (t.TLS.InsecureSkipVerify || t.TLS.MinVersion < tls.VersionTLS12) {
			errs = append(errs, fmt.Errorf("the TLS settings of %s skip verification or allow a version older than TLS 1.2", sig))
		}
	}
	return errors.Join(errs...)
}

// Secrets returns what must never be written to a log: every header value of every signal
// (an API key, the Basic credentials an endpoint's user:password@ became), and the
// credentials inside them, the token after "Bearer " and the password in Basic
// credentials, which a backend may echo on their own. Longer ones come first, so that
// replacing them in order leaves no part of one behind.
func (c Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, t := range c.OTLP {
		for _, v := range t.Headers {
			add(v)
			scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
			if !ok {
				continue
			}
			add(cred)
			if strings.EqualFold(scheme, "Basic") {
				if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
					add(string(b))
					if _, pw, ok := strings.Cut(string(b), ":"); ok {
						add(pw)
					}
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}
