package telemetry

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestListenerBindsOneAddress starts the listener as the extension does, with no host, and
// checks that it bound one address of this machine, never every interface: the sandbox's
// from /etc/hosts, else loopback. When this machine has an address besides loopback, a
// connection to the listener's port through it must be refused. No name is looked up in
// DNS: the sandbox name is read from /etc/hosts alone.
func TestListenerBindsOneAddress(t *testing.T) {
	st := new(Stats)
	l := listen(t, ListenerConfig{MaxBodyBytes: 1024}, NewBuffer(1024, st), st)
	bound := l.server.Addrs()[0].(*net.TCPAddr)
	if bound.IP.IsUnspecified() {
		t.Fatalf("the listener bound %s, every interface", bound)
	}
	wantBind, _ := resolveSandbox()
	if !bound.IP.Equal(net.ParseIP(wantBind)) {
		t.Errorf("the listener bound %s, want %s", bound.IP, wantBind)
	}

	t.Run("unreachable through another address", func(t *testing.T) {
		other := otherAddress(t, bound.IP)
		if other == nil {
			t.Skip("this machine has no address besides the one the listener bound and loopback")
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(other.String(), strconv.Itoa(bound.Port)), 2*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("connected to the listener through %s; it must answer on %s only", other, bound.IP)
		}
	})
}

// otherAddress returns an address of this machine's interfaces that is neither loopback
// nor bound, nor link-local (which needs a zone to dial); nil when there is none.
func otherAddress(t *testing.T, bound net.IP) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("listing this machine's addresses: %v", err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.Equal(bound) {
			continue
		}
		return n.IP
	}
	return nil
}

// TestListenRefusesEveryInterface: an explicit host that means every interface is an error,
// so that no configuration can put the function's telemetry on the network.
func TestListenRefusesEveryInterface(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "0:0:0:0:0:0:0:0"} {
		st := new(Stats)
		l, err := Listen(t.Context(), ListenerConfig{Host: host, MaxBodyBytes: 1024}, NewBuffer(1024, st), st)
		if err == nil {
			_ = l.Close(t.Context())
			t.Errorf("Listen bound %s", host)
			continue
		}
		if !strings.Contains(err.Error(), "every interface") {
			t.Errorf("Listen on %s: %v, want a refusal that says why", host, err)
		}
	}
}

// TestSandboxAddr checks the choice among the addresses /etc/hosts gives the sandbox name.
func TestSandboxAddr(t *testing.T) {
	tests := []struct {
		addrs         []string
		bind, uriHost string
	}{
		{nil, "127.0.0.1", "127.0.0.1"},
		{[]string{"169.254.100.1"}, "169.254.100.1", SandboxHost},
		{[]string{"127.0.0.1", "::1"}, "127.0.0.1", SandboxHost},
		{[]string{"0.0.0.0"}, "127.0.0.1", "127.0.0.1"},
		{[]string{"::", "169.254.100.1"}, "169.254.100.1", SandboxHost},
		{[]string{"not an address"}, "127.0.0.1", "127.0.0.1"},
	}
	for _, tt := range tests {
		bind, host := sandboxAddr(tt.addrs)
		if bind != tt.bind || host != tt.uriHost {
			t.Errorf("sandboxAddr(%q) = %q, %q; want %q, %q", tt.addrs, bind, host, tt.bind, tt.uriHost)
		}
	}
}

// slowConn opens a connection that sends part of a request and then nothing: silent (no
// byte), in the middle of the headers, or in the middle of the body.
func slowConn(t *testing.T, addr string, kind int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var part string
	switch kind % 3 {
	case 1:
		part = "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Len"
	case 2:
		part = "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 1000\r\n\r\n[{\"type\":\"function\",\"record\":\"half"
	}
	if _, err := io.WriteString(c, part); err != nil {
		t.Fatal(err)
	}
	return c
}

// settle waits for the listener to be serving exactly n connections.
func settle(t *testing.T, l *Listener, n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" connections to be served", func() bool { return l.tracked() == n })
}

// TestListenerManyAndSlowConnections holds connections open mid-request while many
// deliveries come in: the deliveries are all served, and once the slow connections go
// away, so do their goroutines, leaving as many as before.
func TestListenerManyAndSlowConnections(t *testing.T) {
	l, buf, st := startListener(t, 1<<16, 64<<20)
	addr := hostOf(t, l)
	baseline := runtime.NumGoroutine()

	const slow = 3 * 8
	var conns []net.Conn
	for i := range slow {
		conns = append(conns, slowConn(t, addr, i))
	}
	settle(t, l, slow)

	const workers, each = 4, 100
	var wg sync.WaitGroup
	statuses := make(chan int, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				statuses <- deliver(addr)
			}
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("a delivery beside the slow connections was answered %d", s)
		}
	}
	if n, _ := buf.Len(); n != 2*workers*each {
		t.Errorf("buffered %d events, want %d", n, 2*workers*each)
	}

	for _, c := range conns {
		c.Close()
	}
	settle(t, l, 0)
	waitFor(t, "the goroutines to return to "+strconv.Itoa(baseline), func() bool { return runtime.NumGoroutine() <= baseline })
	// A silent connection that closes is no request; the two kinds cut mid-request are
	// unreadable requests, counted as such.
	c := st.Snapshot()
	if c.Batches != workers*each || c.Rejected != 2*slow/3 || c.Dropped[DropReadError] != 2*slow/3 {
		t.Errorf("counts %+v, want %d batches and %d requests rejected as unreadable", c, workers*each, 2*slow/3)
	}
}

// deliver posts a two-event batch on a connection of its own and returns the status, 0 on
// a transport error.
func deliver(addr string) int {
	body := `[{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"a"},{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"b"}]`
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// answerOnConnect connects and reads what the listener says before any request is sent:
// over the cap, it answers at once and closes. Sending a request first would race that
// answer, which a client may read as unsolicited, or lose to the reset of a connection
// closed with the request unread.
func answerOnConnect(t *testing.T, addr string) int {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to a connection: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestListenerConnectionCap fills the listener's connections with slow ones: one more is
// refused with 503 and counted, which the platform retries, rather than given a goroutine;
// once a slow one leaves, deliveries are served again.
func TestListenerConnectionCap(t *testing.T) {
	st := new(Stats)
	buf := NewBuffer(1<<20, st)
	l := listen(t, ListenerConfig{Host: "127.0.0.1", MaxBodyBytes: 1 << 16, MaxConns: 4}, buf, st)
	addr := hostOf(t, l)
	baseline := runtime.NumGoroutine()
	var conns []net.Conn
	for i := range 4 {
		conns = append(conns, slowConn(t, addr, i))
	}
	settle(t, l, 4)
	for range 3 {
		if s := answerOnConnect(t, addr); s != http.StatusServiceUnavailable {
			t.Fatalf("a connection over the cap was answered %d, want 503", s)
		}
	}
	settle(t, l, 4)
	if c := st.Snapshot(); c.Rejected != 3 || c.Batches != 0 {
		t.Errorf("counts %+v, want 3 refusals and no batch", c)
	}

	conns[0].Close() // a silent one: its end is no request
	settle(t, l, 3)
	if s := deliver(addr); s != http.StatusOK {
		t.Errorf("a delivery under the cap again was answered %d", s)
	}
	for _, c := range conns[1:] {
		c.Close()
	}
	settle(t, l, 0)
	waitFor(t, "the goroutines to return to "+strconv.Itoa(baseline), func() bool { return runtime.NumGoroutine() <= baseline })
	if n, _ := buf.Len(); n != 2 {
		t.Errorf("buffered %d events, want the 2 of the one delivery served", n)
	}
}

// The sandbox's name is looked up in the hosts file alone, as the resolver reads it.
func TestHostAddrs(t *testing.T) {
	hosts := "# comment sandbox.localdomain\n127.0.0.1 localhost\n\n169.254.100.1\tSandbox.LocalDomain sandbox # the sandbox\n::1 ip6-localhost sandbox.localdomain\nbroken-line\n10.0.0.1 sandbox.localdomain.example\n"
	tests := []struct {
		name string
		want []string
	}{
		{SandboxHost, []string{"169.254.100.1", "::1"}},
		{"localhost", []string{"127.0.0.1"}},
		{"comment", nil},
		{"broken-line", nil},
	}
	for _, tt := range tests {
		if got := hostAddrs([]byte(hosts), tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("hostAddrs(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
