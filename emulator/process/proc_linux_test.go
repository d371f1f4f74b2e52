package process

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return fields[0]
}

func hasChild(pid int) bool { return len(appendChildren(nil, pid)) > 0 }

// eventually waits for cond, which reads kernel state that changes shortly after the call
// that causes it (a signal is delivered asynchronously).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}
