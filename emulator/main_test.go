package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// bins holds the programs the tests run: the example function and the recording extension,
// built once.
var bins struct {
	hello, recorder string
}

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		bins.hello = filepath.Join(dir, "hello")
		bins.recorder = filepath.Join(dir, "recorder")
		return testbin.Build(map[string]string{
			bins.hello:    "github.com/lambda-otel/lambda-otel/examples/hello",
			bins.recorder: "github.com/lambda-otel/lambda-otel/emulator/internal/recorder",
		}, nil)
	}))
}

// fixture is a function directory with the example function as its bootstrap and
// extensions linked into an extensions directory under their own names.
type fixture struct {
	cfg Config
	out string          // where recorders write, one file per extension
	log *testbin.Buffer // the emulator's CloudWatch-style output
}

// newFixture links the function and, for each name, the recorder extension.
func newFixture(t testing.TB, extensions ...string) *fixture {
	t.Helper()
	root := t.TempDir()
	task := filepath.Join(root, "task")
	exts := filepath.Join(root, "opt", "extensions")
	out := filepath.Join(root, "out")
	for _, d := range []string{task, exts, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bins.hello, filepath.Join(task, "bootstrap")); err != nil {
		t.Fatal(err)
	}
	for _, name := range extensions {
		if err := os.Symlink(bins.recorder, filepath.Join(exts, name)); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{out: out, log: &testbin.Buffer{}}
	f.cfg = Config{
		ExtensionsDir: exts, TaskDir: task, FunctionName: "hello-fn", Log: f.log,
		Env: []string{"RECORDER_OUT_DIR=" + out},
	}
	return f
}

// setEnv adds function variables (which extensions also receive).
func (f *fixture) setEnv(kv ...string) { f.cfg.Env = append(f.cfg.Env, kv...) }

func (f *fixture) start(t testing.TB) *Emulator {
	t.Helper()
	e, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e.Shutdown(ctx)
		if t.Failed() {
			t.Logf("emulator output:\n%s", f.log.String())
		}
	})
	return e
}

func invoke(t *testing.T, e *Emulator, payload string) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := e.Invoke(ctx, Request{Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func shutdown(t *testing.T, e *Emulator) ShutdownReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := e.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// recorded is what one recorder wrote.
type recorded struct {
	kinds  []string
	events []map[string]any // INVOKE and SHUTDOWN bodies
	tele   []telemetryEvent // every delivered event, in order
	raw    []map[string]any
}

type telemetryEvent struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

func (te telemetryEvent) record() map[string]any {
	var m map[string]any
	json.Unmarshal(te.Record, &m)
	return m
}

func (f *fixture) recorded(t *testing.T, name string) recorded {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.out, name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Kind   string          `json:"kind"`
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("recorder line %q: %v", sc.Text(), err)
		}
		var raw map[string]any
		json.Unmarshal(sc.Bytes(), &raw)
		r.raw = append(r.raw, raw)
		r.kinds = append(r.kinds, line.Kind)
		switch line.Kind {
		case "event":
			var ev map[string]any
			json.Unmarshal(line.Body, &ev)
			r.events = append(r.events, ev)
		case "delivery":
			if line.Status != 200 {
				continue
			}
			var batch []telemetryEvent
			if err := json.Unmarshal(line.Body, &batch); err != nil {
				t.Fatalf("delivery body is not a JSON array of events: %v", err)
			}
			r.tele = append(r.tele, batch...)
		case "line":
			var ev telemetryEvent
			json.Unmarshal(line.Body, &ev)
			r.tele = append(r.tele, ev)
		}
	}
	return r
}

// platformTypes lists the platform event types in delivery order, without "platform.".
func (r recorded) platformTypes() []string {
	var out []string
	for _, ev := range r.tele {
		if t, ok := strings.CutPrefix(ev.Type, "platform."); ok {
			out = append(out, t)
		}
	}
	return out
}

func (r recorded) ofType(typ string) []telemetryEvent {
	var out []telemetryEvent
	for _, ev := range r.tele {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}
