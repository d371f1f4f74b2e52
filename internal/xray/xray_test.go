package xray

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const root, parent = "5f35ae120c0fec141ab77a00bc047aa2", "2be948a625588e32"
	tests := []struct {
		name, in      string
		trace, parent string // hex; empty when absent
		sampled       Sampling
	}{
		{"spec example", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1", root, parent, SamplingYes},
		{"any order and spaces", " Sampled=0 ; Parent=2BE948A625588E32;Root=1-5f35ae12-0c0fec141ab77a00bc047aa2 ", root, parent, SamplingNo},
		{"lineage and self ignored", "Self=1-67891234-12456789abcdef012345678;Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Lineage=a87bd80c:0", root, "", SamplingUnknown},
		{"sampled unknown", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Sampled=?", root, "", SamplingUnknown},
		{"root only", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2", root, "", SamplingUnknown},
		{"bad version", "Root=2-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32", "", parent, SamplingUnknown},
		{"short root", "Root=1-5f35ae12-0c0fec141ab77a00bc047a", "", "", SamplingUnknown},
		{"non-hex root", "Root=1-5f35ae12-0c0fec141ab77a00bc047axx", "", "", SamplingUnknown},
		{"zero root", "Root=1-00000000-000000000000000000000000;Parent=2be948a625588e32", "", parent, SamplingUnknown},
		{"zero parent", "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=0000000000000000", root, "", SamplingUnknown},
		{"short parent", "Parent=2be948a62558", "", "", SamplingUnknown},
		{"empty", "", "", "", SamplingUnknown},
		{"garbage", ";;==;Root;Parent=;", "", "", SamplingUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Parse(tt.in)
			if got := hexIf(h.TraceID[:], h.HasTraceID); got != tt.trace {
				t.Errorf("trace id = %q, want %q", got, tt.trace)
			}
			if got := hexIf(h.ParentID[:], h.HasParentID); got != tt.parent {
				t.Errorf("parent id = %q, want %q", got, tt.parent)
			}
			if h.Sampled != tt.sampled {
				t.Errorf("sampled = %d, want %d", h.Sampled, tt.sampled)
			}
		})
	}
}

func TestParseSpanID(t *testing.T) {
	for in, want := range map[string]string{
		"2be948a625588e32":   "2be948a625588e32",
		" 2BE948A625588E32 ": "2be948a625588e32",
		"0000000000000000":   "",
		"2be948a625588e3":    "",
		"2be948a625588e3g":   "",
	} {
		id, ok := ParseSpanID(in)
		if got := hexIf(id[:], ok); got != want {
			t.Errorf("ParseSpanID(%q) = %q, want %q", in, got, want)
		}
	}
}

func hexIf(b []byte, ok bool) string {
	if !ok {
		return ""
	}
	return hex.EncodeToString(b)
}

// FuzzParse checks that any header parses without panicking and that what it accepts
// round-trips to the header's own digits.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1",
		"Root=1-5e1b4151-5ac6c58dc39a2b3a8b3c9a1e;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:0",
		"Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Sampled=?",
		"", ";", "Root=", "Root=1-;Parent=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := Parse(s)
		if h.HasTraceID {
			want := hex.EncodeToString(h.TraceID[:])
			if !strings.Contains(strings.ToLower(strings.ReplaceAll(s, "-", "")), want) {
				t.Fatalf("trace id %s is not in %q", want, s)
			}
		}
		if h.HasParentID && !strings.Contains(strings.ToLower(s), hex.EncodeToString(h.ParentID[:])) {
			t.Fatalf("parent id is not in %q", s)
		}
	})
}
