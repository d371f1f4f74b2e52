package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// seqIDs generates ids that are unique, recognisable and the same on every run, so that
// golden files hold exact output: trace ids start with ee, span ids with 5e.
type seqIDs struct{ n uint64 }

func (s *seqIDs) TraceID() pcommon.TraceID {
	s.n++
	var id [16]byte
	id[0] = 0xee
	binary.BigEndian.PutUint64(id[8:], s.n)
	return id
}

func (s *seqIDs) SpanID() pcommon.SpanID {
	s.n++
	var id [8]byte
	id[0] = 0x5e
	binary.BigEndian.PutUint32(id[4:], uint32(s.n))
	return id
}

// scenario is a golden test's input: what the extension would feed the converter.
type scenario struct {
	Config struct {
		PhaseSpans         string `json:"phaseSpans"`
		PlatformLogs       string `json:"platformLogs"`
		Temporality        string `json:"temporality"`
		Trigger            string `json:"trigger"`
		ServiceName        string `json:"serviceName"`
		ResourceAttributes string `json:"resourceAttributes"`
	} `json:"config"`
	Steps []struct {
		// Invoke is an INVOKE event.
		Invoke *Invocation `json:"invoke"`
		// Events is a Telemetry API batch, decoded by the real decoder.
		Events json.RawMessage `json:"events"`
		// Shutdown is a SHUTDOWN event.
		Shutdown *struct {
			Time   time.Time `json:"time"`
			Reason string    `json:"reason"`
		} `json:"shutdown"`
		// Take is a flush at that time, with the extension's counters.
		Take *time.Time `json:"take"`
		Self Self       `json:"self"`
	} `json:"steps"`
}

var testStart = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func (sc *scenario) converter(t *testing.T) *Converter {
	t.Helper()
	cfg := DefaultConfig()
	if sc.Config.PhaseSpans == "children" {
		cfg.PhaseSpans = ChildSpans
	}
	if sc.Config.Temporality == "delta" {
		cfg.Temporality = Delta
	}
	if s := sc.Config.PlatformLogs; s != "" {
		p, err := ParsePlatformLogs(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.PlatformLogs = p
	}
	cfg.Trigger = sc.Config.Trigger
	attrs, err := ParseResourceAttributes(sc.Config.ResourceAttributes)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{
		Config: cfg,
		Resource: Resource{
			ServiceName:     sc.Config.ServiceName,
			Attributes:      attrs,
			FunctionName:    "my-function",
			FunctionVersion: "$LATEST",
			Region:          "eu-west-1",
			MemoryMB:        128,
			LogGroup:        "/aws/lambda/my-function",
			Version:         "test",
		},
		Start: testStart,
		IDs:   &seqIDs{},
	})
}

// run feeds the scenario to a converter and returns every Take.
func (sc *scenario) run(t *testing.T) []Data {
	t.Helper()
	c := sc.converter(t)
	var takes []Data
	for i, st := range sc.Steps {
		switch {
		case st.Invoke != nil:
			c.Invoked(*st.Invoke)
		case st.Events != nil:
			events, err := telemetry.DecodeBatch(nil, st.Events)
			if err != nil {
				t.Fatalf("step %d: decoding the batch: %v", i, err)
			}
			c.Add(events)
		case st.Shutdown != nil:
			c.Shutdown(st.Shutdown.Time, st.Shutdown.Reason)
		case st.Take != nil:
			takes = append(takes, c.Take(*st.Take, st.Self))
		default:
			t.Fatalf("step %d does nothing", i)
		}
	}
	return takes
}

func loadScenarios(t *testing.T) map[string]*scenario {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*scenario)
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc scenario
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = &sc
	}
	if len(out) == 0 {
		t.Fatal("no scenarios in testdata/")
	}
	return out
}

// TestGolden converts each scenario in testdata/ and compares the OTLP JSON of every Take
// with its .golden.json file. Run with -update to rewrite them after a deliberate change.
func TestGolden(t *testing.T) {
	for name, sc := range loadScenarios(t) {
		t.Run(name, func(t *testing.T) {
			got := marshalTakes(t, sc.run(t))
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update after checking the change):\n%s", path, firstDiff(got, want))
			}
		})
	}
}

// marshalTakes writes takes as an indented JSON array of {"traces", "logs", "metrics"}
// OTLP JSON documents; an empty signal is null.
func marshalTakes(t *testing.T, takes []Data) []byte {
	t.Helper()
	type take struct {
		Traces  json.RawMessage `json:"traces"`
		Logs    json.RawMessage `json:"logs"`
		Metrics json.RawMessage `json:"metrics"`
	}
	out := make([]take, len(takes))
	for i, d := range takes {
		var err error
		if d.Traces.SpanCount() > 0 {
			out[i].Traces, err = (&ptrace.JSONMarshaler{}).MarshalTraces(d.Traces)
		}
		if err == nil && d.Logs.LogRecordCount() > 0 {
			out[i].Logs, err = (&plog.JSONMarshaler{}).MarshalLogs(d.Logs)
		}
		if err == nil && d.Metrics.DataPointCount() > 0 {
			out[i].Metrics, err = (&pmetric.JSONMarshaler{}).MarshalMetrics(d.Metrics)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// firstDiff shows the first differing line of two texts, with its neighbours.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			from := max(0, i-3)
			return fmt.Sprintf("line %d:\n  got:  %s\n  want: %s\ncontext (want):\n%s", i+1, gl, wl, strings.Join(w[from:min(len(w), i+3)], "\n"))
		}
	}
	return "(same lines)"
}
