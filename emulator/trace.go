package emulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
)

const traceType = "X-Amzn-Trace-Id"

// trace is an invocation's X-Ray context. As in Lambda, the INVOKE event, the platform's
// events and the runtime all get the same header, whose Parent stands for the function's
// X-Ray segment: the caller's Parent when it sent one, else an id of its own. The
// platform's invocation span is spanID, a child of that Parent; the function's own spans,
// made from the runtime's header, are its siblings until an extension puts them under it.
type trace struct {
	root, parent, sampled string
	spanID                string
}

// newTrace reads the caller's header. With active tracing an invocation without one starts
// a sampled trace of its own; without, it is not traced.
func newTrace(header string, active bool) trace {
	var t trace
	for _, field := range strings.Split(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			t.root = v
		case "Parent":
			t.parent = v
		case "Sampled":
			t.sampled = v
		}
	}
	if t.root == "" {
		if !active {
			return trace{}
		}
		t = trace{root: fmt.Sprintf("1-%08x-%s", time.Now().Unix(), randomHex(24))}
	}
	if active && t.sampled == "" {
		t.sampled = "1"
	}
	if t.parent == "" {
		t.parent = randomHex(16)
	}
	t.spanID = randomHex(16)
	return t
}

func (t trace) ok() bool { return t.root != "" }

func (t trace) header(parent string) string {
	h := "Root=" + t.root
	if parent != "" {
		h += ";Parent=" + parent
	}
	if t.sampled != "" {
		h += ";Sampled=" + t.sampled
	}
	return h
}

// value is the header as the platform reports it: the caller's context.
func (t trace) value() string { return t.header(t.parent) }

// runtimeHeader is Lambda-Runtime-Trace-Id: the same header.
func (t trace) runtimeHeader() string {
	if !t.ok() {
		return ""
	}
	return t.value()
}

// telemetry is the record's tracing object, nil when the invocation is not traced.
func (t trace) telemetry() *delivery.Tracing {
	if !t.ok() {
		return nil
	}
	return &delivery.Tracing{SpanID: t.spanID, Type: traceType, Value: t.value()}
}
