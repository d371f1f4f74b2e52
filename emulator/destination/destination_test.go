package destination

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fnARN = "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST"

// specRecord is the guide's example: an event that failed three attempts.
func specRecord() Record {
	return Record{
		Version:   "1.0",
		Timestamp: "2019-11-14T18:16:05.568Z",
		RequestContext: RequestContext{RequestID: "e4b46cbf-b738-xmpl-8880-a18cdf61200e", FunctionArn: fnARN,
			Condition: RetriesExhausted, ApproximateInvokeCount: 3},
		RequestPayload:  JSON([]byte(`{"ORDER_IDS":["9e07af03-ce31-4ff3-xmpl-36dce652cb4f","637de236-e7b2-464e-xmpl-baf57f86bb53","a81ddca6-2c35-45c7-xmpl-c3a03a31ed15"]}`)),
		ResponseContext: &ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		ResponsePayload: JSON([]byte(`{"errorMessage":"RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request"}`)),
	}
}

// The record is the guide's, field for field.
func TestRecordIsTheGuides(t *testing.T) {
	got, err := json.MarshalIndent(specRecord(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/record.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Errorf("record:\n%s\nwant testdata/record.json:\n%s", got, want)
	}
}

func TestJSON(t *testing.T) {
	for in, want := range map[string]string{`{"a":1}`: `{"a":1}`, ``: `null`, ` `: `null`, `not json`: `"not json"`, `"s"`: `"s"`} {
		if got := string(JSON([]byte(in))); got != want {
			t.Errorf("JSON(%q) = %s, want %s", in, got, want)
		}
	}
}

// readLines returns the lines of target's file under dir, each decoded.
func readLines(t *testing.T, dir, target string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName(target)))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Queues and topics receive the record itself as each line; a second record appends.
func TestQueueAndTopic(t *testing.T) {
	dir := t.TempDir()
	d := &Deliverer{Dir: dir}
	for _, target := range []string{"arn:aws:sqs:us-east-1:123456789012:failures", "arn:aws:sns:us-east-1:123456789012:results"} {
		for range 2 {
			if err := d.Record(t.Context(), target, "", specRecord()); err != nil {
				t.Fatal(err)
			}
		}
		lines := readLines(t, dir, target)
		if len(lines) != 2 {
			t.Fatalf("%s: %d lines, want 2", target, len(lines))
		}
		want, _ := json.Marshal(specRecord())
		got, _ := json.Marshal(lines[1])
		var w map[string]any
		json.Unmarshal(want, &w)
		wantNorm, _ := json.Marshal(w)
		if string(got) != string(wantNorm) {
			t.Errorf("%s: line %s, want the record %s", target, got, wantNorm)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "arn_aws_sqs_us-east-1_123456789012_failures.ndjson")); err != nil {
		t.Errorf("the queue's file is not named after its ARN: %v", err)
	}
}

// An event bus receives an EventBridge event with the record as its detail.
func TestEventBus(t *testing.T) {
	dir := t.TempDir()
	const bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
	d := &Deliverer{Dir: dir, NewID: func() string { return "id-1" }}
	success := specRecord()
	success.RequestContext.Condition = Success
	for _, r := range []Record{success, specRecord()} {
		if err := d.Record(t.Context(), bus, "", r); err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, dir, bus)
	for i, wantType := range []string{"Lambda Function Invocation Result - Success", "Lambda Function Invocation Result - Failure"} {
		ev := lines[i]
		resources, _ := ev["resources"].([]any)
		detail, _ := ev["detail"].(map[string]any)
		if ev["detail-type"] != wantType || ev["source"] != "lambda" || ev["version"] != "0" || ev["id"] != "id-1" ||
			ev["account"] != "123456789012" || ev["region"] != "us-east-1" || len(resources) != 2 || resources[0] != fnARN || resources[1] != bus ||
			detail["version"] != "1.0" || detail["requestContext"] == nil || ev["time"] == "" {
			t.Errorf("event %d: %v", i, ev)
		}
	}
}

// A function's record is posted to its URL as an asynchronous invocation.
func TestFunction(t *testing.T) {
	const target = "arn:aws:lambda:us-east-1:123456789012:function:on-success"
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
		w.WriteHeader(status)
	}))
	defer srv.Close()
	d := &Deliverer{URLs: map[string]string{target: srv.URL + "/invoke"}}
	const trace = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Sampled=1"
	if err := d.Record(t.Context(), target, trace, specRecord()); err != nil {
		t.Fatal(err)
	}
	r, b := <-got, <-bodies
	want, _ := json.Marshal(specRecord())
	if r.Method != "POST" || r.URL.Path != "/invoke" || r.Header.Get("X-Amz-Invocation-Type") != "Event" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Amzn-Trace-Id") != trace || string(b) != string(want) {
		t.Errorf("posted %s %s %v\n%s", r.Method, r.URL, r.Header, b)
	}
	status = http.StatusInternalServerError
	if err := d.Record(t.Context(), target, "", specRecord()); err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Errorf("a function that answered 500: %v", err)
	}
	<-got
	<-bodies
}

func TestUndeliverable(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		d       *Deliverer
		target  string
		wantErr string
	}{
		{"a function without a URL", &Deliverer{Dir: dir}, "arn:aws:lambda:us-east-1:123456789012:function:unmapped", "no URL is mapped to this function"},
		{"a FIFO queue", &Deliverer{Dir: dir}, "arn:aws:sqs:us-east-1:123456789012:orders.fifo", "a FIFO SQS queue cannot receive records"},
		{"a FIFO topic", &Deliverer{Dir: dir}, "arn:aws:sns:us-east-1:123456789012:orders.fifo", "a FIFO SNS topic cannot receive records"},
		{"no directory", &Deliverer{}, "arn:aws:sqs:us-east-1:123456789012:q", "no destinations directory is set"},
		{"a bucket", &Deliverer{Dir: dir}, "arn:aws:s3:::b-1", "an S3 bucket cannot receive"},
	}
	for _, tt := range tests {
		if err := tt.d.Record(context.Background(), tt.target, "", specRecord()); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.wantErr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("undeliverable records left files: %v", entries)
	}
}

// A dead letter is the event as it was sent, with Lambda's three attributes, the error
// message cut to 1 KB.
func TestDeadLetter(t *testing.T) {
	dir := t.TempDir()
	d := &Deliverer{Dir: dir}
	const dlq = "arn:aws:sqs:us-east-1:123456789012:dlq"
	long := strings.Repeat("x", 2000)
	if err := d.DeadLetter(dlq, NewDeadLetter([]byte(`{"order":7}`), "req-1", 200, long)); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, dir, dlq)
	attrs, _ := lines[0]["messageAttributes"].(map[string]any)
	attr := func(name string) map[string]any { m, _ := attrs[name].(map[string]any); return m }
	if lines[0]["body"] != `{"order":7}` || attr("RequestID")["stringValue"] != "req-1" || attr("RequestID")["dataType"] != "String" ||
		attr("ErrorCode")["stringValue"] != "200" || attr("ErrorCode")["dataType"] != "Number" ||
		attr("ErrorMessage")["stringValue"] != long[:1024] {
		t.Errorf("dead letter: %v", lines[0])
	}
	if err := d.DeadLetter(dlq, NewDeadLetter([]byte(`{}`), "req-2", 0, "expired")); err != nil {
		t.Fatal(err)
	}
	if attrs, _ := readLines(t, dir, dlq)[1]["messageAttributes"].(map[string]any); attrs["ErrorCode"] != nil || attrs["RequestID"] == nil {
		t.Errorf("a dead letter of an event never attempted has no status code: %v", attrs)
	}
	if err := d.DeadLetter("arn:aws:events:us-east-1:123456789012:event-bus/default", DeadLetter{}); err == nil || !strings.Contains(err.Error(), "use an SQS queue or an SNS topic") {
		t.Errorf("an event bus as a dead-letter target: %v", err)
	}
}
