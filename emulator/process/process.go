// Package process runs the programs of an emulated execution environment: the runtime
// bootstrap and each extension. Every program gets its own process group, so that freezing,
// thawing and killing also reach the children it starts, and one pipe for stdout and stderr,
// read line by line, so that the order of its lines is kept.
package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// MaxLine is the longest line passed on whole; Lambda cuts log lines at 256 KiB, and so does
// the emulator, passing the rest on as further lines.
const MaxLine = 256 << 10

// Spec describes a program to start.
type Spec struct {
	// Path is the executable; Args are its arguments after the program name.
	Path string
	Args []string
	// Dir is the working directory, Env the whole environment ("K=V").
	Dir string
	Env []string
	// OnLine receives each line the program writes to stdout or stderr, without its newline,
	// with the time it was read. It is called from one goroutine at a time and must not keep
	// line, whose bytes are reused.
	OnLine func(line []byte, at time.Time)
}

// Process is a started program.
type Process struct {
	cmd  *exec.Cmd
	out  *lineReader
	done chan struct{}
	// exit is set before done is closed.
	exit error

	mu     sync.Mutex
	frozen bool
}

// Start starts the program described by spec.
func Start(spec Spec) (*Process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the output pipe of %s: %w", spec.Path, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.Path, err)
	}
	// The child holds its own copy; ours would keep the pipe open after every writer exited.
	w.Close()
	out, err := newLineReader(r, spec.OnLine)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		r.Close()
		return nil, fmt.Errorf("reading the output of %s: %w", spec.Path, err)
	}
	p := &Process{cmd: cmd, out: out, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	p.exit = p.cmd.Wait()
	close(p.done)
}

// Pid is the program's process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError is how the program ended: nil for status 0, else an *exec.ExitError. It is
// valid once Done is closed.
func (p *Process) ExitError() error { return p.exit }

// Exited reports whether the program has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the program's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %v to process group %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Freeze stops the process group (SIGSTOP), as Lambda freezes an environment between
// invocations.
func (p *Process) Freeze() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		return nil
	}
	p.frozen = true
	return p.Signal(syscall.SIGSTOP)
}

// Thaw resumes a frozen process group (SIGCONT).
func (p *Process) Thaw() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		return nil
	}
	p.frozen = false
	return p.Signal(syscall.SIGCONT)
}

// Kill kills the process group and waits for the program to exit.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	// A stopped process acts on SIGKILL too, but SIGCONT lets its group's other members go.
	p.Thaw()
	<-p.done
}

// Sync returns once every line the program wrote before the call has gone to OnLine. The
// emulator calls it before it reports the end of a phase, so that a program's lines come
// before the platform event that follows them, as on Lambda.
func (p *Process) Sync() { p.out.sync() }

// Close kills the program if it still runs, passes on what is left of its output and
// releases the pipe.
func (p *Process) Close() {
	p.Kill()
	p.out.close()
}

// RSS is the resident memory of the process group's members that can be found: the program
// and its descendants. It is 0 where the platform does not tell.
func (p *Process) RSS() int64 {
	if p.Exited() {
		return 0
	}
	return treeRSS(p.Pid())
}

// ExitDescription says how a program ended, in the words Lambda's errors use.
func ExitDescription(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
