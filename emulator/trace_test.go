package emulator

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestTrace(t *testing.T) {
	tests := []struct {
		name, header string
		active       bool
		value        string // "" for untraced; "NEW" for a generated root
	}{
		{"pass-through without header", "", false, ""},
		{"pass-through keeps the caller's header", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=0", false, "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=0"},
		{"active samples a header without a decision", " Root=1-5f35ae12-0c0fec141ab77a00bc047aa2 ; Lineage=a:1", true, "PARENT Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=%s;Sampled=1"},
		{"active starts a trace", "", true, "NEW"},
	}
	root := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrace(tt.header, tt.active)
			switch {
			case tt.value == "":
				if tr.ok() || tr.telemetry() != nil || tr.runtimeHeader() != "" {
					t.Errorf("traced: %+v", tr)
				}
				return
			case tt.value == "NEW":
				if !root.MatchString(tr.value()) {
					t.Errorf("value = %q", tr.value())
				}
			case strings.HasPrefix(tt.value, "PARENT "):
				// The function's segment is named when the caller named no parent.
				if want := fmt.Sprintf(strings.TrimPrefix(tt.value, "PARENT "), tr.parent); len(tr.parent) != 16 || tr.value() != want {
					t.Errorf("value = %q, want %q", tr.value(), want)
				}
			case tr.value() != tt.value:
				t.Errorf("value = %q, want %q", tr.value(), tt.value)
			}
			tel := tr.telemetry()
			if len(tr.spanID) != 16 || tel.SpanID != tr.spanID || tel.Type != "X-Amzn-Trace-Id" || tel.Value != tr.value() {
				t.Errorf("telemetry = %+v", tel)
			}
			if tr.runtimeHeader() != tr.value() || tr.parent == tr.spanID {
				t.Errorf("runtime header %q, want the invocation's header %q, whose parent is not the invocation span %s", tr.runtimeHeader(), tr.value(), tr.spanID)
			}
		})
	}
}
