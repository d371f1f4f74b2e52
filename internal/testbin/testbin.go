// Package testbin helps tests that run real programs: it builds them once per test binary
// and collects their output safely across goroutines.
package testbin

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Main runs a package's tests with programs built once for all of them: build builds them
// into a temporary directory, removed afterwards. A passing run is also checked for leaked
// goroutines. It returns the exit code for os.Exit.
func Main(m *testing.M, build func(dir string) error) int {
	dir, err := os.MkdirTemp("", "testbin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// Build compiles each package (an import path) to its output path. env is added to the
// go command's environment, e.g. CGO_ENABLED=0 for a binary built as the layer ships it;
// flags go before the package, e.g. -trimpath.
func Build(targets map[string]string, env []string, flags ...string) error {
	for out, pkg := range targets {
		args := append(append([]string{"build"}, flags...), "-o", out, pkg)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
		}
	}
	return nil
}

// Buffer is a bytes.Buffer that a test reads while other goroutines write to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Field walks a decoded JSON document by its keys; it is nil where the path ends.
func Field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		o, _ := v.(map[string]any)
		v = o[k]
	}
	return v
}

// FreePort returns a loopback port nothing listens on now, for a program that must be
// told its port before it starts. Another process may take it in between; the tests that
// use it bind it soon after.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
