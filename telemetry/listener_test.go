package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func startListener(t *testing.T, maxBody, maxBuffer int) (*Listener, *Buffer, *Stats) {
	t.Helper()
	st := new(Stats)
	buf := NewBuffer(maxBuffer, st)
	return listen(t, ListenerConfig{Host: "127.0.0.1", MaxBodyBytes: maxBody}, buf, st), buf, st
}

// listen starts a listener that is closed, gracefully, when the test ends.
func listen(t testing.TB, cfg ListenerConfig, buf *Buffer, st *Stats) *Listener {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	l, err := Listen(ctx, cfg, buf, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return l
}

// dial connects to addr with a deadline on everything the test does with the connection.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, method, uri string, body []byte) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var r io.Reader = bytes.NewReader(body)
	if method == "CHUNKED" {
		// A reader of unknown length makes the client send the body chunked.
		method, r = http.MethodPost, io.MultiReader(bytes.NewReader(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, uri, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestListenerRequests(t *testing.T) {
	l, buf, st := startListener(t, 4096, 1<<20)
	if !strings.HasPrefix(l.URI(), "http://127.0.0.1:") || !strings.HasSuffix(l.URI(), "/") {
		t.Fatalf("URI %q", l.URI())
	}
	good := readBatch(t, "testdata/batches/lenient.json")
	steps := []struct {
		name       string
		method     string
		body       []byte
		wantStatus int
	}{
		{"a good batch", http.MethodPost, good, http.StatusOK},
		{"a malformed batch is answered 200 and counted", http.MethodPost, []byte(`{"not":"an array"}`), http.StatusOK},
		{"a truncated batch keeps its prefix", http.MethodPost, readBatch(t, "testdata/batches/truncated.json"), http.StatusOK},
		{"a body over the limit is answered 413 and counted", http.MethodPost, bytes.Repeat([]byte(" "), 5000), http.StatusRequestEntityTooLarge},
		{"a chunked body over the limit too", "CHUNKED", bytes.Repeat([]byte(" "), 5000), http.StatusRequestEntityTooLarge},
		{"a GET", http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"a path is accepted", http.MethodPost, []byte(`[]`), http.StatusOK},
	}
	for _, s := range steps {
		uri := l.URI()
		if s.name == "a path is accepted" {
			uri += "some/path"
		}
		if got := post(t, s.method, uri, s.body); got != s.wantStatus {
			t.Errorf("%s: status %d, want %d", s.name, got, s.wantStatus)
		}
	}
	events := buf.Drain(nil)
	if len(events) != 7+1 {
		t.Errorf("buffered %d events, want 8 (7 from the good batch, 1 from the truncated one)", len(events))
	}
	c := st.Snapshot()
	if c.Batches != 4 || c.Events != 8 || c.Rejected != 3 || c.Dropped[DropMalformedBatch] != 2 ||
		c.Dropped[DropBodyTooLarge] != 2 || c.DroppedBytes[DropBodyTooLarge] != 5000 || c.Dropped[DropBufferFull] != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestListenerConcurrentBatches(t *testing.T) {
	l, buf, st := startListener(t, 1<<20, 64<<20)
	batch := []byte(`[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"a"},{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"b"}]`)
	const posts = 50
	errs := make(chan int, posts)
	for range posts {
		go func() { errs <- post(t, http.MethodPost, l.URI(), batch) }()
	}
	for range posts {
		if s := <-errs; s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	if n, _ := buf.Len(); n != 2*posts {
		t.Errorf("buffered %d, want %d", n, 2*posts)
	}
	if c := st.Snapshot(); c.Batches != posts || c.Events != 2*posts {
		t.Errorf("counts %+v", c)
	}
}

func TestListenerPortInUse(t *testing.T) {
	l, _, _ := startListener(t, 1024, 1024)
	u, err := url.Parse(l.URI())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	st := new(Stats)
	_, err = Listen(t.Context(), ListenerConfig{Host: "127.0.0.1", Port: port, MaxBodyBytes: 1024}, NewBuffer(1024, st), st)
	if err == nil || !strings.Contains(err.Error(), "telemetry listener") {
		t.Errorf("binding a used port: %v", err)
	}
}

// TestResolveSandbox checks the listener's host against this machine's /etc/hosts: the
// sandbox name when the file lists it, else 127.0.0.1, never an answer from DNS.
func TestResolveSandbox(t *testing.T) {
	hosts, _ := os.ReadFile("/etc/hosts")
	listed := false
	for line := range strings.SplitSeq(string(hosts), "\n") {
		fields := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(fields) > 1 && slices.Contains(fields[1:], SandboxHost) {
			listed = true
		}
	}
	bind, host := resolveSandbox()
	switch {
	case listed && (host != SandboxHost || net.ParseIP(bind) == nil):
		t.Errorf("/etc/hosts lists %s, but the listener uses %q %q", SandboxHost, bind, host)
	case !listed && (bind != "127.0.0.1" || host != "127.0.0.1"):
		t.Errorf("/etc/hosts does not list %s, but the listener uses %q %q", SandboxHost, bind, host)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	b := Buffering{MaxItems: MaxMaxItems, MaxBytes: MaxMaxBytes, TimeoutMs: 25}
	if got, want := MaxBodyBytes(b), 2*1048576+10000*128; got != want {
		t.Errorf("MaxBodyBytes = %d, want %d (twice maxBytes and 128 bytes of envelope per item)", got, want)
	}
}

// TestListenerCloseCutsSilentConnection checks that a connection that never sends a byte
// holds Close only until its context ends, and is then cut with nothing left running.
func TestListenerCloseCutsSilentConnection(t *testing.T) {
	st := new(Stats)
	l, err := Listen(t.Context(), ListenerConfig{Host: "127.0.0.1", MaxBodyBytes: 1024}, NewBuffer(1024, st), st)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(l.URI())
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the connection to be served", func() bool { return l.active() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want the context's deadline", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the silent connection was not cut: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes; it is for states that have no
// event to wait on, such as the server having read the first byte of a request.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func (l *Listener) active() int { return l.server.Active() }

// TestListenerCloseIsGraceful checks that Close answers a request in flight, closes an idle
// keep-alive connection, and returns without needing its deadline.
func TestListenerCloseIsGraceful(t *testing.T) {
	st := new(Stats)
	buf := NewBuffer(1<<20, st)
	l, err := Listen(t.Context(), ListenerConfig{Host: "127.0.0.1", MaxBodyBytes: 1 << 16}, buf, st)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(l.URI())
	body := `[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"x"}]`
	request := func(body string) string {
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(body), body)
	}

	idle := dial(t, u.Host)
	defer idle.Close()
	if _, err := io.WriteString(idle, request(body)); err != nil {
		t.Fatal(err)
	}
	idleReader := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleReader, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}

	busy := dial(t, u.Host)
	defer busy.Close()
	full := request(body)
	half := len(full) - len(body)/2
	if _, err := io.WriteString(busy, full[:half]); err != nil {
		t.Fatal(err)
	}
	// Close must find the connection tracked, or it would cut it as not yet served.
	waitFor(t, "the connection to be served", func() bool { return l.active() == 1 })

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- l.Close(ctx)
	}()
	if _, err := io.WriteString(busy, full[half:]); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(busy), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("request in flight during Close: %v %v", resp, err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := idleReader.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("reading the idle keep-alive connection after Close: %v, want EOF", err)
	}
	if n, _ := buf.Len(); n != 2 {
		t.Errorf("buffered %d events, want 2", n)
	}
}
