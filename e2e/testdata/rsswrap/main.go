// Command rsswrap stands in for an extension in the end-to-end tests: it runs the real
// extension as its child, under the same name, and when the child has exited writes the
// child's peak resident memory (ru_maxrss, KiB) to the file named by E2E_MAXRSS_FILE. The
// kernel keeps that figure exactly, which sampling /proc from outside cannot: the peak may
// come in the last milliseconds before the extension exits.
//
// It shares its process group with the child, so the emulator's freeze, thaw and kill reach
// both.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

// real is the extension's path, set at build time with -ldflags -X main.real=PATH.
var real string

func main() {
	os.Exit(run())
}

func run() int {
	cmd := &exec.Cmd{
		Path:   real,
		Args:   append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
	// Signals for the extension alone (the runtime's SIGTERM is sent to its own group) are
	// passed on.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		return 2
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	signal.Stop(sigs)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if out := os.Getenv("E2E_MAXRSS_FILE"); out != "" {
			_ = os.WriteFile(out, []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o644)
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}
