package exporters

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, and
// the PEM files of each, as a user would point OTEL_EXPORTER_OTLP_* at them.
type testPKI struct {
	caPool              *x509.CertPool
	server              tls.Certificate
	caFile              string
	clientFile, keyFile string
}

// newCA returns a self-signed CA's certificate and key.
func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue returns a certificate signed by ca, for a server at 127.0.0.1 or for a client,
// with its DER and key.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// writePEM writes blocks of type typ to a new file under dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKey(t *testing.T, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "EC PRIVATE KEY", der)
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "lambda-otel test CA")
	serverDER, serverKey := issue(t, ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	clientDER, clientKey := issue(t, ca, caKey, "lambda-otel-test-client", x509.ExtKeyUsageClientAuth)
	p := testPKI{caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	p.clientFile = writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	p.keyFile = writeKey(t, dir, "client-key.pem", clientKey)
	return p
}

// otlpTLSServer is an OTLP backend over TLS that accepts every export, over HTTP/1.1 or
// HTTP/2 and, for gRPC, with a trailers-only OK answer. It records the client certificate
// each request came with.
type otlpTLSServer struct {
	*httptest.Server
	mu      sync.Mutex
	clients []string // the client certificate's common name per request, "" for none
}

func startTLSServer(t *testing.T, p testPKI, clientAuth tls.ClientAuthType) *otlpTLSServer {
	t.Helper()
	s := &otlpTLSServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.mu.Lock()
		s.clients = append(s.clients, name)
		s.mu.Unlock()
		if r.Header.Get("Content-Type") == "application/grpc" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "0")
		}
		w.WriteHeader(http.StatusOK)
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: clientAuth, ClientCAs: p.caPool}
	// The handshake failures the tests provoke are the point; the server's log of them is noise.
	s.Config.ErrorLog = discardLog()
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func (s *otlpTLSServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clients...)
}

// TestTLSVerification exports to a TLS backend whose certificate comes from a private CA.
// Verification is on unless the CA is given: without OTEL_EXPORTER_OTLP_CERTIFICATE the
// handshake fails on the unknown authority, whatever OTEL_EXPORTER_OTLP_INSECURE says,
// over OTLP/HTTP and gRPC alike; with it the export succeeds. A backend that requires a
// client certificate gets the one of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _KEY.
//
// A failed handshake is a transport error, which Export treats like a backend that cannot
// be reached: retried inside the budget, then Retryable, so that the queue keeps the data
// for the next flush (a certificate may be rotated meanwhile) and counts it as dropped at
// shutdown. It is never counted as rejected, and nothing reaches the backend.
func TestTLSVerification(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a client certificate from a CA the backend does not trust
	plain := startTLSServer(t, p, tls.NoClientCert)
	mutual := startTLSServer(t, p, tls.RequireAndVerifyClientCert)
	hostPort := func(s *otlpTLSServer) string { return strings.TrimPrefix(s.URL, "https://") }

	tests := []struct {
		name   string
		server *otlpTLSServer
		env    map[string]string
		// wantErr is nil for a success; else it reports whether the error is the expected one.
		wantErr    func(error) bool
		wantClient string
	}{
		{"the system's roots do not know the CA", plain, map[string]string{},
			isUnknownAuthority, ""},
		{"INSECURE does not turn verification off for https", plain, map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"},
			isUnknownAuthority, ""},
		{"http/json neither", plain, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			isUnknownAuthority, ""},
		{"gRPC without a scheme is TLS, verified", plain, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": hostPort(plain)},
			isUnknownAuthority, ""},
		{"the CA given", plain, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile},
			nil, ""},
		{"the CA given for the one signal", plain, map[string]string{"OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": p.caFile},
			nil, ""},
		{"the CA given, over gRPC", plain, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": hostPort(plain), "OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile},
			nil, ""},
		{"a CA that is not the backend's", plain, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": other.caFile},
			isUnknownAuthority, ""},
		{"mutual TLS without a client certificate", mutual, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile},
			refusedHandshake, ""},
		{"mutual TLS with a client certificate the backend does not trust", mutual, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile,
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": other.clientFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": other.keyFile},
			refusedHandshake, ""},
		{"mutual TLS with the client certificate", mutual, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile,
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": p.clientFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": p.keyFile},
			nil, "lambda-otel-test-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": tt.server.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := LoadConfig(lookup(env))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			before := len(tt.server.requests())
			exp := NewOTLP(cfg.OTLP)
			defer exp.Close(context.Background())
			ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
			defer cancel()
			req := sample()[Logs]
			res := exp.Export(ctx, req)
			got := tt.server.requests()[before:]
			if tt.wantErr == nil {
				if res.Err != nil || res.Accepted != req.Items() {
					t.Fatalf("export: %+v", res)
				}
				if len(got) != 1 || got[0] != tt.wantClient {
					t.Errorf("the backend saw requests with client certificates %q, want one with %q", got, tt.wantClient)
				}
				return
			}
			if res.Err == nil || !tt.wantErr(res.Err) {
				t.Fatalf("export: %v, want a TLS failure", res.Err)
			}
			if !res.Retryable || res.Rejected != 0 || res.Accepted != 0 || !errors.Is(res.Err, ErrBudget) {
				t.Errorf("result %+v: want the request kept, retryable, after the budget ran out", res)
			}
			if len(got) != 0 {
				t.Errorf("the backend received %d requests through a failed handshake", len(got))
			}
		})
	}
}

func isUnknownAuthority(err error) bool {
	_, verify := errors.AsType[*tls.CertificateVerificationError](err)
	_, unknown := errors.AsType[x509.UnknownAuthorityError](err)
	return verify && unknown
}

// refusedHandshake reports the error of a handshake the server refused with an alert,
// which crypto/tls reports as a "remote error" of an unexported type. Under TLS 1.3 the
// client learns of it only when it reads, and over HTTP/2 the transport may then report
// only that its connection could not be established.
// refusedHandshake recognises the server refusing the client's certificate. Under TLS 1.3
// the client finishes its side of the handshake before the server checks the certificate,
// so the refusal may reach it as the server's alert or, when the client is already
// writing the request, as the connection torn down under that write.
func refusedHandshake(err error) bool {
	for _, s := range []string{"remote error: tls: ", "http2: client conn could not be established", "broken pipe", "connection reset by peer"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// TestNoSettingSkipsVerification: every way of loading the configuration yields TLS
// settings that verify the server, and Validate refuses any that would not.
func TestNoSettingSkipsVerification(t *testing.T) {
	p := newPKI(t)
	envs := []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"},
		{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": p.clientFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": p.keyFile},
		{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent"},
	}
	for _, env := range envs {
		cfg, _ := LoadConfig(lookup(env))
		for _, sig := range Signals {
			tc := cfg.OTLP[sig].TLS
			if tc != nil && (tc.InsecureSkipVerify || tc.VerifyPeerCertificate != nil || tc.MinVersion < tls.VersionTLS12) {
				t.Errorf("%v: the %s TLS settings do not verify the server: %+v", env, sig, tc)
			}
			if strings.HasPrefix(cfg.OTLP[sig].URL, "http://") && env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" {
				t.Errorf("%v: %s is sent in plaintext to %s", env, sig, cfg.OTLP[sig].URL)
			}
		}
	}
	cfg := DefaultConfig()
	cfg.OTLP[Logs].TLS = &tls.Config{InsecureSkipVerify: true}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "skip verification") {
		t.Errorf("Validate of a config that skips verification: %v", err)
	}
}
