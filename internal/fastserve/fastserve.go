// Package fastserve runs a fasthttp.Server the way the extension's listeners need: one
// goroutine per connection, every connection's state followed, and a Close bounded by its
// context that leaves no goroutine behind.
package fastserve

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Pauses of the accept loop after an error, and how long Close waits for connections it cut.
const (
	acceptPauseMin = 5 * time.Millisecond
	acceptPauseMax = time.Second
	cutWait        = 100 * time.Millisecond
)

// Hooks count what the server cannot report otherwise; a nil hook is not called.
type Hooks struct {
	// AcceptError is called for each failed accept, which is retried after a pause.
	AcceptError func()
	// Refused is called for each connection over the server's Concurrency, which fasthttp
	// answers with 503 and closes.
	Refused func()
	// Changed is called when a request begins or is answered, and when a connection ends:
	// Active may have changed.
	Changed func()
}

// Server serves srv on listeners. It runs each connection with fasthttp.Server.ServeConn
// rather than Serve, whose worker pool leaves a goroutine asleep for up to ten seconds
// after the server stops.
type Server struct {
	srv   *fasthttp.Server
	hooks Hooks
	wg    sync.WaitGroup
	// served is closed when every accept loop and every connection have ended.
	served chan struct{}
	// stop is closed by Close, ending the accept loops' pauses.
	stop chan struct{}
	lns  []net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]fasthttp.ConnState
	closing bool
}

// New returns a server for srv, whose ConnState it takes over.
func New(srv *fasthttp.Server, hooks Hooks) *Server {
	s := &Server{
		srv: srv, hooks: hooks,
		served: make(chan struct{}), stop: make(chan struct{}),
		conns: make(map[net.Conn]fasthttp.ConnState),
	}
	srv.ConnState = s.connState
	return s
}

// Serve starts accepting on every listener; stop with Close. Call it once.
func (s *Server) Serve(lns ...net.Listener) {
	s.lns = lns
	for _, ln := range lns {
		s.wg.Go(func() { s.accept(ln) })
	}
	go func() {
		s.wg.Wait()
		close(s.served)
	}()
}

func (s *Server) accept(ln net.Listener) {
	pause := acceptPauseMin
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: wait and try again rather than leave
			// the connections queued on a socket nobody accepts from.
			call(s.hooks.AcceptError)
			t := time.NewTimer(pause)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-t.C:
			}
			pause = min(2*pause, acceptPauseMax)
			continue
		}
		pause = acceptPauseMin
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		s.wg.Go(func() {
			if err := s.srv.ServeConn(c); errors.Is(err, fasthttp.ErrConcurrencyLimit) {
				call(s.hooks.Refused)
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			call(s.hooks.Changed)
		})
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}

// track registers an accepted connection, unless the server is closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = fasthttp.StateNew
	return true
}

// connState follows each connection's state so Close can end the idle ones at once and the
// busy ones as soon as their request is answered.
func (s *Server) connState(c net.Conn, st fasthttp.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok || st == fasthttp.StateClosed || st == fasthttp.StateHijacked {
		return
	}
	s.conns[c] = st
	call(s.hooks.Changed)
	if s.closing && st != fasthttp.StateActive {
		_ = c.Close()
	}
}

// Addrs returns the addresses served, in the order given to Serve.
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		addrs[i] = ln.Addr()
	}
	return addrs
}

// Conns returns the number of connections being served.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Active returns the number of connections with a request in progress: at least one byte
// of it read, and its answer not yet written.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.conns {
		if st == fasthttp.StateActive {
			n++
		}
	}
	return n
}

// Close stops accepting and waits, until ctx ends, for requests in flight; then it cuts
// whatever connections remain. A connection that is open but silent counts as in flight,
// so give ctx only the time a request may still need.
func (s *Server) Close(ctx context.Context) error {
	var err error
	for _, ln := range s.lns {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	s.mu.Lock()
	if !s.closing {
		close(s.stop)
	}
	s.closing = true
	for c, st := range s.conns {
		if st != fasthttp.StateActive {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	select {
	case <-s.served:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	err = errors.Join(err, ctx.Err())
	// A cut connection ends its goroutine at once: the handlers never block.
	t := time.NewTimer(cutWait)
	defer t.Stop()
	select {
	case <-s.served:
	case <-t.C:
		err = errors.Join(err, errors.New("connections did not end after being cut"))
	}
	return err
}
