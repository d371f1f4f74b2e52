package process

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// lineReader splits a pipe into lines. Reading and passing lines on happen under one mutex,
// both in the reading goroutine and in sync, so that sync can drain the pipe itself and know
// that nothing written before it is still in flight.
type lineReader struct {
	f      *os.File
	rc     syscall.RawConn
	onLine func([]byte, time.Time)

	mu      sync.Mutex
	chunk   []byte
	partial []byte
	closed  bool
	done    chan struct{}
}

func newLineReader(f *os.File, onLine func([]byte, time.Time)) (*lineReader, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if onLine == nil {
		onLine = func([]byte, time.Time) {}
	}
	r := &lineReader{f: f, rc: rc, onLine: onLine, chunk: make([]byte, 64<<10), done: make(chan struct{})}
	go r.run()
	return r, nil
}

func (r *lineReader) run() {
	defer close(r.done)
	for {
		var n int
		var rerr error
		err := r.rc.Read(func(fd uintptr) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.closed {
				return true
			}
			n, rerr = readOnce(fd, r.chunk)
			if errors.Is(rerr, syscall.EAGAIN) {
				return false
			}
			r.consume(r.chunk[:max(n, 0)])
			return true
		})
		if err != nil || rerr != nil || n <= 0 {
			r.mu.Lock()
			r.flushPartial()
			r.mu.Unlock()
			return
		}
	}
}

// sync reads whatever the pipe holds now and passes it on.
func (r *lineReader) sync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.rc.Control(func(fd uintptr) {
		for {
			n, err := readOnce(fd, r.chunk)
			if n <= 0 || err != nil {
				return
			}
			r.consume(r.chunk[:n])
		}
	})
}

// close passes on what the pipe still holds, including a last line without a newline, and
// stops the reading goroutine.
func (r *lineReader) close() {
	r.sync()
	r.mu.Lock()
	r.flushPartial()
	r.closed = true
	r.mu.Unlock()
	r.f.Close()
	<-r.done
}

func readOnce(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

func (r *lineReader) consume(b []byte) {
	now := time.Now()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			r.partial = append(r.partial, b...)
			for len(r.partial) >= MaxLine {
				r.onLine(r.partial[:MaxLine], now)
				r.partial = append(r.partial[:0], r.partial[MaxLine:]...)
			}
			return
		}
		line := b[:i]
		if len(r.partial) > 0 {
			r.partial = append(r.partial, line...)
			line = r.partial
		}
		for len(line) > MaxLine {
			r.onLine(line[:MaxLine], now)
			line = line[MaxLine:]
		}
		r.onLine(bytes.TrimSuffix(line, []byte("\r")), now)
		r.partial = r.partial[:0]
		b = b[i+1:]
	}
}

func (r *lineReader) flushPartial() {
	if len(r.partial) > 0 {
		r.onLine(r.partial, time.Now())
		r.partial = r.partial[:0]
	}
}
