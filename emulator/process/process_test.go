//go:build linux

package process

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines collects what a program writes.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(b []byte, _ time.Time) {
	l.mu.Lock()
	l.got = append(l.got, string(b))
	l.mu.Unlock()
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func start(t *testing.T, script string, l *lines) *Process {
	t.Helper()
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, OnLine: l.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func waitDone(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the program did not exit")
	}
}

func TestLinesInOrderFromStdoutAndStderr(t *testing.T) {
	var l lines
	p := start(t, `echo one; echo two >&2; printf 'three\r\nlast-without-newline'; exit 3`, &l)
	waitDone(t, p)
	p.Close()
	want := []string{"one", "two", "three", "last-without-newline"}
	if got := l.all(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if got := ExitDescription(p.ExitError()); got != "exit status 3" {
		t.Errorf("ExitDescription = %q", got)
	}
}

// Sync passes on lines while the program keeps running and its pipe stays open.
func TestSyncDrainsWhatWasWritten(t *testing.T) {
	var l lines
	p := start(t, `echo ready; exec sleep 30`, &l)
	eventually(t, "the line passed on by Sync", func() bool {
		p.Sync()
		return len(l.all()) == 1
	})
	if got := l.all(); got[0] != "ready" {
		t.Errorf("line = %q", got[0])
	}
}

func TestLongLinesAreCut(t *testing.T) {
	var l lines
	p := start(t, `head -c 600000 /dev/zero | tr '\0' x; echo; echo end`, &l)
	waitDone(t, p)
	p.Close()
	got := l.all()
	if len(got) != 4 || len(got[0]) != MaxLine || len(got[1]) != MaxLine || len(got[2]) != 600000-2*MaxLine || got[3] != "end" {
		var sizes []int
		for _, s := range got {
			sizes = append(sizes, len(s))
		}
		t.Errorf("line sizes = %v, want [%d %d %d 3]", sizes, MaxLine, MaxLine, 600000-2*MaxLine)
	}
}

func TestFreezeThawAndKill(t *testing.T) {
	var l lines
	p := start(t, `exec sleep 30`, &l)
	if err := p.Freeze(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stopped after Freeze", func() bool { return procState(t, p.Pid()) == "T" })
	if err := p.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "running after Thaw", func() bool { return procState(t, p.Pid()) != "T" })
	if p.RSS() <= 0 {
		t.Errorf("RSS = %d, want > 0", p.RSS())
	}
	p.Freeze()
	p.Kill()
	if got := ExitDescription(p.ExitError()); got != "signal: killed" {
		t.Errorf("ExitDescription = %q", got)
	}
	if p.RSS() != 0 {
		t.Errorf("RSS after exit = %d", p.RSS())
	}
}

func TestSignalReachesTheGroup(t *testing.T) {
	var l lines
	// The shell forks a child and waits; SIGTERM to the group ends both.
	p := start(t, `sleep 30 & wait`, &l)
	eventually(t, "the child started", func() bool { return hasChild(p.Pid()) })
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
}
