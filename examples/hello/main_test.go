package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

const requestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"

// invoke calls the handler the way aws-lambda-go does: with the request's Lambda context and
// the invocation deadline on ctx.
func invoke(t *testing.T, f *function, ev Event, timeout time.Duration) (Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       requestID,
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:hello",
	})
	return f.handle(ctx, ev)
}

// checkLines fails unless every output line is a whole text line or a whole JSON object
// carrying the request id: a line mixing both means two writers interleaved.
func checkLines(t *testing.T, out string) {
	t.Helper()
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "{"):
			var rec struct {
				Level     string `json:"level"`
				Msg       string `json:"msg"`
				RequestID string `json:"requestId"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("broken JSON line %q: %v", line, err)
			} else if rec.RequestID != requestID || rec.Level == "" || rec.Msg == "" {
				t.Errorf("JSON line %q lacks level, msg or requestId", line)
			}
		case strings.HasPrefix(line, "["):
			if !strings.Contains(line, "\t"+requestID+"\t") || strings.Contains(line, "{") {
				t.Errorf("text line %q lacks the request id or carries JSON", line)
			}
		case strings.HasPrefix(line, "flood line "):
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
}

func TestHandle(t *testing.T) {
	downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer downstream.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	tests := []struct {
		name    string
		ev      Event
		timeout time.Duration
		want    Response
		errAs   any
		errIs   error
		output  []string
	}{
		{
			name:   "empty action means ok",
			ev:     Event{},
			want:   Response{OK: true, RequestID: requestID, Action: "ok"},
			output: []string{"[DEBUG]\t", "[INFO]\t", "[WARN]\t", "hello, world", `"level":"DEBUG"`, `"level":"INFO"`},
		},
		{
			name:   "ok with a downstream call",
			ev:     Event{Action: "ok", URL: downstream.URL, Message: "demo"},
			want:   Response{OK: true, RequestID: requestID, Action: "ok", Status: http.StatusTeapot},
			output: []string{"hello, demo", "answered 418", `"status":418`},
		},
		{
			name:   "downstream unreachable",
			ev:     Event{URL: gone.URL},
			errAs:  new(*DownstreamError),
			output: []string{"[ERROR]\t"},
		},
		{
			name:   "error",
			ev:     Event{Action: "error", Message: "insufficient funds"},
			errAs:  new(*PaymentDeclinedError),
			output: []string{"[ERROR]\t", "payment declined: insufficient funds"},
		},
		{
			name:   "short sleep",
			ev:     Event{Action: "sleep", SleepMs: 10},
			want:   Response{OK: true, RequestID: requestID, Action: "sleep"},
			output: []string{"sleeping 10 ms"},
		},
		{
			name:    "sleep past the deadline",
			ev:      Event{Action: "sleep", SleepMs: 60000},
			timeout: 50 * time.Millisecond,
			errIs:   context.DeadlineExceeded,
			output:  []string{"[WARN]\t", "sleep interrupted"},
		},
		{
			name:    "oom holds memory until the deadline",
			ev:      Event{Action: "oom", MB: 4},
			timeout: 50 * time.Millisecond,
			errIs:   context.DeadlineExceeded,
			output:  []string{"allocating 4 MiB", "holding 4 MiB"},
		},
		{
			name:   "flood",
			ev:     Event{Action: "flood", Lines: 500},
			want:   Response{OK: true, RequestID: requestID, Action: "flood"},
			output: []string{"flood line 1 of 500\n", "flood line 500 of 500\n"},
		},
		{
			name:   "lines",
			ev:     Event{Action: "lines", Lines: 3, JSONLines: 2, SleepMs: 1},
			want:   Response{OK: true, RequestID: requestID, Action: "lines"},
			output: []string{"text line 1 of 3", "text line 3 of 3", `"msg":"json line","requestId":"` + requestID + `","n":2,"of":2`},
		},
		{
			name:   "unknown action",
			ev:     Event{Action: "dance"},
			errAs:  new(*UnknownActionError),
			output: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			f := newFunction(&out)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			got, err := invoke(t, f, tc.ev, timeout)
			switch {
			case tc.errAs != nil:
				if !errors.As(err, tc.errAs) {
					t.Fatalf("error = %v (%T), want %T", err, err, tc.errAs)
				}
			case tc.errIs != nil:
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("error = %v, want %v", err, tc.errIs)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case got != tc.want:
				t.Fatalf("response = %+v, want %+v", got, tc.want)
			}
			for _, s := range tc.output {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			checkLines(t, out.String())
		})
	}
}

func TestUnknownActionNamesTheValidOnes(t *testing.T) {
	msg := (&UnknownActionError{Action: "dance"}).Error()
	for _, want := range append([]string{`"dance"`}, actions...) {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not mention %q", msg, want)
		}
	}
}

func TestFloodDefaultsToTenThousandLines(t *testing.T) {
	var out bytes.Buffer
	if _, err := invoke(t, newFunction(&out), Event{Action: "flood"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != defaultFloodLines {
		t.Errorf("flood wrote %d lines, want %d", n, defaultFloodLines)
	}
}

// TestConcurrentOutputKeepsLinesWhole runs floods, whose buffered flushes cut lines, next to
// ordinary invocations: no line may come out mixed.
func TestConcurrentOutputKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	f := newFunction(&out)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ev := Event{Message: fmt.Sprint("caller ", i)}
			if i%2 == 0 {
				ev = Event{Action: "flood", Lines: 20000}
			}
			if _, err := invoke(t, f, ev, 5*time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	checkLines(t, out.String())
}

func TestAnnounce(t *testing.T) {
	var out bytes.Buffer
	newFunction(&out).announce()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "[INFO] hello: init" {
		t.Fatalf("init output = %q, want the text line then one JSON line", lines)
	}
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec.Level != "INFO" || rec.Msg != "hello: init" {
		t.Errorf("JSON init line %q: %+v, %v", lines[1], rec, err)
	}
}

func TestDownstreamCallCarriesTheTraceHeader(t *testing.T) {
	const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	got := make(chan string, 1)
	downstream := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Amzn-Trace-Id")
	}))
	defer downstream.Close()
	ctx := context.WithValue(t.Context(), traceKey, header)
	status, _, err := newFunction(io.Discard).get(ctx, downstream.URL)
	if err != nil || status != http.StatusOK {
		t.Fatalf("get = %d, %v", status, err)
	}
	if h := <-got; h != header {
		t.Errorf("X-Amzn-Trace-Id = %q, want %q", h, header)
	}
}
