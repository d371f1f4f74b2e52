package convert

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// TestLogsJoinTheirInvocationSpan checks, over every scenario, that a log record naming an
// invocation carries the trace and span id of that invocation's span, wherever both ended
// up: the correlation users rely on to go from a trace to its logs.
func TestLogsJoinTheirInvocationSpan(t *testing.T) {
	for name, sc := range loadScenarios(t) {
		t.Run(name, func(t *testing.T) {
			type ids struct {
				trace pcommon.TraceID
				span  pcommon.SpanID
			}
			spans := map[string]ids{}
			var logs []plog.LogRecord
			for _, d := range sc.run(t) {
				eachSpan(d.Traces, func(s ptrace.Span) {
					if v, ok := s.Attributes().Get(attrInvocationID); ok {
						spans[v.Str()] = ids{s.TraceID(), s.SpanID()}
					}
				})
				eachLog(d.Logs, func(r plog.LogRecord) { logs = append(logs, r) })
			}
			checked := 0
			for _, r := range logs {
				v, ok := r.Attributes().Get(attrInvocationID)
				if !ok {
					continue
				}
				want, ok := spans[v.Str()]
				if !ok {
					continue
				}
				checked++
				if r.TraceID() != want.trace || r.SpanID() != want.span {
					t.Errorf("log %q of invocation %s has trace %s span %s; its span has %s %s",
						r.Body().AsString(), v.Str(), r.TraceID(), r.SpanID(), want.trace, want.span)
				}
			}
			if len(spans) > 0 && checked == 0 {
				t.Error("no log record was matched to a span")
			}
		})
	}
}

func eachSpan(td ptrace.Traces, fn func(ptrace.Span)) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				fn(s)
			}
		}
	}
}

func eachLog(ld plog.Logs, fn func(plog.LogRecord)) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, r := range sl.LogRecords().All() {
				fn(r)
			}
		}
	}
}

func newTestConverter() *Converter {
	return New(Options{Config: DefaultConfig(), Resource: Resource{FunctionName: "fn"}, Start: testStart, IDs: &seqIDs{}})
}

func ev(at time.Time, r telemetry.Record) telemetry.Event {
	types := map[string]telemetry.EventType{
		"*telemetry.Start": telemetry.TypeStart, "*telemetry.RuntimeDone": telemetry.TypeRuntimeDone,
		"*telemetry.Report": telemetry.TypeReport, "*telemetry.Log": telemetry.TypeFunction,
	}
	return telemetry.Event{Time: at, Type: types[fmt.Sprintf("%T", r)], Record: r}
}

// TestOpenInvocationsAreBounded: Reports that never come (lost, or not subscribed) must not
// grow the converter's state without end; the oldest phases are closed as incomplete.
func TestOpenInvocationsAreBounded(t *testing.T) {
	c := newTestConverter()
	const n = maxOpen + 10
	for i := range n {
		c.Add([]telemetry.Event{ev(testStart.Add(time.Duration(i)*time.Second), &telemetry.Start{RequestID: fmt.Sprint("req-", i)})})
	}
	if len(c.open) != maxOpen || len(c.order) != maxOpen {
		t.Fatalf("%d open phases (%d in order), want the bound %d", len(c.open), len(c.order), maxOpen)
	}
	d := c.Take(testStart, Self{})
	if got := d.Traces.SpanCount(); got != n-maxOpen {
		t.Fatalf("%d spans closed early, want %d", got, n-maxOpen)
	}
	s := d.Traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if v, _ := s.Attributes().Get(attrInvocationID); v.Str() != "req-0" {
		t.Errorf("closed %s first, want the oldest, req-0", v.Str())
	}
	if v, ok := s.Attributes().Get(attrIncomplete); !ok || !v.Bool() {
		t.Error("an early-closed span is not marked incomplete")
	}
	c.Shutdown(testStart.Add(time.Hour), "spindown")
	if got := c.Take(testStart, Self{}).Traces.SpanCount(); got != maxOpen {
		t.Errorf("shutdown emitted %d spans, want the %d still open", got, maxOpen)
	}
	if got := c.Take(testStart, Self{}).Traces.SpanCount(); got != 0 {
		t.Errorf("a Take after shutdown emitted %d spans again", got)
	}
}

// TestRetryWithSameRequestID: asynchronous retries reuse the request id; each attempt is
// its own span, and a duplicated Start delivery is not a new attempt.
func TestRetryWithSameRequestID(t *testing.T) {
	c := newTestConverter()
	id := "5d6f1b2a-0000-4000-8000-000000000001"
	t0 := testStart
	start := ev(t0, &telemetry.Start{RequestID: id})
	c.Add([]telemetry.Event{
		start, start,
		ev(t0.Add(10*time.Millisecond), &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusError, ErrorType: "Handled"}),
		ev(t0.Add(60*time.Second), &telemetry.Start{RequestID: id}),
		ev(t0.Add(60*time.Second+5*time.Millisecond), &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusSuccess}),
		ev(t0.Add(60*time.Second+6*time.Millisecond), &telemetry.Report{RequestID: id, Status: telemetry.StatusSuccess}),
	})
	d := c.Take(t0, Self{})
	var statuses []string
	eachSpan(d.Traces, func(s ptrace.Span) { statuses = append(statuses, s.Status().Code().String()) })
	if got := strings.Join(statuses, ","); got != "Error,Ok" {
		t.Errorf("span statuses %s, want Error (first attempt, closed by the retry) then Ok", got)
	}
	if got := c.metrics.invocations.total; got != 2 {
		t.Errorf("counted %d invocations, want 2 attempts", got)
	}
}

func TestParseTextLine(t *testing.T) {
	const id = "79b4f56e-95b1-4643-9700-2807f4e68189"
	tests := []struct {
		line, level, requestID string
		sev                    plog.SeverityNumber
	}{
		{"[INFO]\t2023-08-31T22:12:58.534Z\t1c8df7d3-xmpl-46da-9778-518e6eca8125\t## EVENT", "INFO", "1c8df7d3-xmpl-46da-9778-518e6eca8125", plog.SeverityNumberInfo},
		{"[INFO] 2023-08-31T22:12:58.534Z 1c8df7d3-xmpl-46da-9778-518e6eca8125 ## EVENT", "INFO", "1c8df7d3-xmpl-46da-9778-518e6eca8125", plog.SeverityNumberInfo},
		{"[INFO] Hello world, I am a function!", "INFO", "", plog.SeverityNumberInfo},
		{"[ERROR] Runtime.ImportModuleError: Unable to import module 'app'", "ERROR", "", plog.SeverityNumberError},
		{"[CRITICAL]\t2023-08-31T22:12:58.534Z\t\tboom", "CRITICAL", "", plog.SeverityNumberFatal},
		{"2024-10-27T19:17:45.586Z " + id + " INFO some log message", "INFO", id, plog.SeverityNumberInfo},
		{"2024-10-27T19:17:45.586Z\t" + id + "\tTRACE\tdetail", "TRACE", id, plog.SeverityNumberTrace},
		{"2024-10-27 19:17:45 " + id + " WARN  Handler - java", "WARN", id, plog.SeverityNumberWarn},
		{"2024-10-27T19:17:45.586Z\t" + id + "\tcrit\tdotnet", "crit", id, plog.SeverityNumberFatal},
		{"2024-10-27T19:17:45.586Z\t" + id + "\tdbug\tdotnet", "dbug", id, plog.SeverityNumberDebug},
		{"time=2024-10-27T19:17:45.586Z level=ERROR+2 msg=x", "ERROR+2", "", plog.SeverityNumberError},
		{"level=debug msg=x", "debug", "", plog.SeverityNumberDebug},
		{"WARNING: disk almost full", "WARNING", "", plog.SeverityNumberWarn},
		{"FATAL boom", "FATAL", "", plog.SeverityNumberFatal},
		{"info is lower case prose", "", "", 0},
		{"2024/10/27 19:17:45 go log line", "", "", 0},
		{`2024/10/27 19:17:45 {"errorMessage":"payment declined","errorType":"PaymentDeclinedError"}`, "ERROR", "", plog.SeverityNumberError},
		{`{"errorMessage":"not after a time"}`, "", "", 0},
		{"[not a level] text", "", "", 0},
		{"", "", "", 0},
		{"   ", "", "", 0},
	}
	for _, tt := range tests {
		got := parseTextLine(tt.line)
		if got.level != tt.level || got.severity != tt.sev || got.requestID != tt.requestID {
			t.Errorf("parseTextLine(%q) = %q %v %q; want %q %v %q", tt.line, got.level, got.severity, got.requestID, tt.level, tt.sev, tt.requestID)
		}
	}
}

func TestJSONLine(t *testing.T) {
	tests := []struct {
		name, obj, body, sevText, requestID string
		attrs                               map[string]string
	}{
		{"python", `{"timestamp":"2024-05-01T10:00:00Z","level":"INFO","message":"hi","logger":"root","requestId":"r1"}`,
			"hi", "INFO", "r1", map[string]string{"logger": "root", attrInvocationID: "r1"}},
		{"msg then message keeps both", `{"msg":"alias","message":"canonical"}`,
			"canonical", "", "", map[string]string{"msg": "alias"}},
		{"message then msg", `{"message":"canonical","msg":"alias"}`,
			"canonical", "", "", map[string]string{"msg": "alias"}},
		{"no message keeps the object as body", `{"a":1}`, `{"a":1}`, "", "", map[string]string{"a": "1"}},
		{"numeric level", `{"level":30,"msg":"pino"}`, "pino", "INFO", "", nil},
		{"unknown numeric level", `{"level":35,"msg":"x"}`, "x", "", "", map[string]string{"level": "35"}},
		{"level of another type", `{"level":true,"msg":"x"}`, "x", "", "", map[string]string{"level": "true"}},
		{"java request id", `{"AWSrequestId":"r2","message":"m"}`, "m", "", "r2", map[string]string{attrInvocationID: "r2"}},
		{"escapes and unicode", `{"message":"caf\u00e9 \"q\"\n","k":"\ud83d\ude00"}`, "café \"q\"\n", "", "", map[string]string{"k": "😀"}},
		{"null value", `{"message":"m","gone":null}`, "m", "", "", map[string]string{"gone": ""}},
		{"big number is a double", `{"message":"m","n":123456789012345678901234}`, "m", "", "", map[string]string{"n": "1.2345678901234569e+23"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := plog.NewLogRecord()
			id := jsonLine(rec, []byte(tt.obj))
			if id != tt.requestID || rec.Body().AsString() != tt.body || rec.SeverityText() != tt.sevText {
				t.Errorf("got id %q body %q severity %q; want %q %q %q", id, rec.Body().AsString(), rec.SeverityText(), tt.requestID, tt.body, tt.sevText)
			}
			if rec.Attributes().Len() != len(tt.attrs) {
				t.Errorf("attributes %v, want %v", rec.Attributes().AsRaw(), tt.attrs)
			}
			for k, want := range tt.attrs {
				if v, ok := rec.Attributes().Get(k); !ok || v.AsString() != want {
					t.Errorf("attribute %s = %q, want %q", k, v.AsString(), want)
				}
			}
		})
	}
}

// TestMalformedJSONLineIsKept: a line that does not parse is kept whole, with no partial
// attributes left behind.
func TestMalformedJSONLineIsKept(t *testing.T) {
	for _, obj := range []string{`{"a":1,"b":`, `{"a":1}trailing`, `{"a":tru}`, `{"a":"\x"}`, `[1,2]`, `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`} {
		rec := plog.NewLogRecord()
		rec.Attributes().PutStr("kept", "yes")
		if id := jsonLine(rec, []byte(obj)); id != "" {
			t.Errorf("%q: request id %q from a bad line", obj, id)
		}
		if rec.Body().Str() != obj {
			t.Errorf("%q: body %q, want the line as sent", obj, rec.Body().Str())
		}
		if raw := rec.Attributes().AsRaw(); len(raw) != 1 || raw["kept"] != "yes" {
			t.Errorf("%q: attributes %v, want only those set before", obj, raw)
		}
	}
}

func TestParsePlatformLogs(t *testing.T) {
	for in, want := range map[string]PlatformLogs{
		"all": AllPlatformLogs, "TRUE": AllPlatformLogs, "none": 0, "off": 0,
		"report": 1 << 5, "platform.report, start": 1<<5 | 1<<3, "logsDropped": 1 << 11,
	} {
		got, err := ParsePlatformLogs(in)
		if err != nil || got != want {
			t.Errorf("ParsePlatformLogs(%q) = %b, %v; want %b", in, got, err, want)
		}
	}
	if _, err := ParsePlatformLogs("report,bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("an unknown type gives %v, want an error naming it", err)
	}
	p, _ := ParsePlatformLogs("report")
	if !p.Has(telemetry.TypeReport) || p.Has(telemetry.TypeStart) || !p.Has("platform.somethingNew") {
		t.Error("Has: want report in, start out, unknown platform types kept")
	}
}

func TestParseResourceAttributes(t *testing.T) {
	got, err := ParseResourceAttributes(" team=payments%20core , deployment.environment.name=prod,,empty=")
	if err != nil {
		t.Fatal(err)
	}
	want := []Attribute{{"team", "payments core"}, {"deployment.environment.name", "prod"}, {"empty", ""}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"novalue", "=x", "k=%zz"} {
		if _, err := ParseResourceAttributes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseTextLine: any line parses without panicking, and a request id found is a token
// of the line.
func FuzzParseTextLine(f *testing.F) {
	for _, s := range []string{
		"[INFO] Hello world, I am a function!",
		"[INFO]\t2023-08-31T22:12:58.534Z\t1c8df7d3-xmpl-46da-9778-518e6eca8125\t## EVENT",
		"2024-10-27T19:17:45.586Z 79b4f56e-95b1-4643-9700-2807f4e68189 INFO some log message",
		"time=2024-10-27T19:17:45.586Z level=WARN msg=x", "ERROR: x", "[", "[]", "level=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tl := parseTextLine(s)
		if tl.requestID != "" && !strings.Contains(s, tl.requestID) {
			t.Fatalf("request id %q is not in %q", tl.requestID, s)
		}
		if (tl.severity == 0) != (tl.level == "") {
			t.Fatalf("level %q with severity %v", tl.level, tl.severity)
		}
	})
}

// FuzzLogLine: any function log line, text or JSON, converts without panicking into a
// record whose strings are valid UTF-8, as protobuf requires.
func FuzzLogLine(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":"2022-10-12T00:03:50.000Z","level":"INFO","requestId":"79b4f56e-95b1-4643-9700-2807f4e68189","message":"Hello world, I am a function!"}`,
		`{"message":{"a":[1,2.5,true,null,"x"]},"level":50}`,
		"[INFO] Hello world, I am a function!", "{\"msg\":\"\xff\"}", "\xff\xfe", "{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := newTestConverter()
		c.Add([]telemetry.Event{
			{Time: testStart, Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: s}},
			{Time: testStart, Type: telemetry.TypeFunction, Record: &telemetry.Log{Object: []byte(s)}},
		})
		d := c.Take(testStart, Self{})
		if _, err := (&plog.ProtoMarshaler{}).MarshalLogs(d.Logs); err != nil {
			t.Fatal(err)
		}
		eachLog(d.Logs, func(r plog.LogRecord) {
			if !validUTF8Value(r.Body()) {
				t.Fatalf("body %q is not valid UTF-8", r.Body().AsString())
			}
			for k, v := range r.Attributes().All() {
				if !validUTF8(k) || !validUTF8Value(v) {
					t.Fatalf("attribute %q=%q is not valid UTF-8", k, v.AsString())
				}
			}
		})
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func validUTF8Value(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return validUTF8(v.Str())
	case pcommon.ValueTypeMap:
		for k, e := range v.Map().All() {
			if !validUTF8(k) || !validUTF8Value(e) {
				return false
			}
		}
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			if !validUTF8Value(e) {
				return false
			}
		}
	}
	return true
}
