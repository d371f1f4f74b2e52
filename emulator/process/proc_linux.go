package process

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig: a program must not outlive an emulator that died without cleaning up.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

var pageSize = int64(os.Getpagesize())

// treeRSS sums the resident set of pid and its descendants, found through each thread's
// children list in /proc.
func treeRSS(pid int) int64 {
	var total int64
	queue := []int{pid}
	for seen := 0; len(queue) > 0 && seen < 1024; seen++ {
		p := queue[0]
		queue = queue[1:]
		total += rss(p)
		queue = appendChildren(queue, p)
	}
	return total
}

func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * pageSize
}

func appendChildren(dst []int, pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return dst
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				dst = append(dst, c)
			}
		}
	}
	return dst
}
