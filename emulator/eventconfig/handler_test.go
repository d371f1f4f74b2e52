package eventconfig

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fnPath  = "/2019-09-25/functions/my-function/event-invoke-config"
	fnARN   = "arn:aws:lambda:us-east-1:123456789012:function:my-function"
	queue   = "arn:aws:sqs:us-east-1:123456789012:destination"
	topic   = "arn:aws:sns:us-east-1:123456789012:my-topic"
	lastMod = "1573686021.479"
)

// clock is a test clock; tick is added at every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.tick)
	return t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestStore(tick time.Duration) (*Store, *clock) {
	c := &clock{t: time.UnixMilli(1573686021479), tick: tick}
	s := NewStore(Function{Partition: "aws", Region: "us-east-1", Account: "123456789012", Name: "my-function", Versions: []string{"live"}}, c.now)
	return s, c
}

// The API's operations, in a sequence whose later steps depend on the earlier: Put replaces
// the whole configuration, Update merges into it, failed requests leave it as it was.
func TestAPI(t *testing.T) {
	// A second passes at each reading of the clock, which keeps the rate limit away; the
	// bodies are compared with LastModified as "T", and TestLastModified checks it.
	s, _ := newTestStore(time.Second)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	steps := []struct {
		name, method, path, body string
		status                   int
		// errType is X-Amzn-ErrorType; want is the exact body, or for errors a part of
		// the message.
		errType, want string
	}{
		{"get before any put", "GET", fnPath, "", 404, "ResourceNotFoundException", "The function " + fnARN + ":$LATEST doesn't have an EventInvokeConfig"},
		{"update before any put", "POST", fnPath, `{"MaximumRetryAttempts":1}`, 404, "ResourceNotFoundException", "doesn't have an EventInvokeConfig"},
		{"delete before any put", "DELETE", fnPath, "", 404, "ResourceNotFoundException", "doesn't have an EventInvokeConfig"},
		{"put", "PUT", fnPath, `{"MaximumRetryAttempts":0,"MaximumEventAgeInSeconds":3600,"DestinationConfig":{"OnFailure":{"Destination":"` + queue + `"}}}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{"Destination":"` + queue + `"}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":0}`},
		{"update merges one setting", "POST", fnPath, `{"MaximumRetryAttempts":1}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{"Destination":"` + queue + `"}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":1}`},
		{"update merges one destination", "POST", fnPath, `{"DestinationConfig":{"OnSuccess":{"Destination":"` + topic + `"}}}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{"Destination":"` + topic + `"},"OnFailure":{"Destination":"` + queue + `"}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":1}`},
		{"update removes a destination given as {}", "POST", fnPath, `{"DestinationConfig":{"OnSuccess":{}}}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{"Destination":"` + queue + `"}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":1}`},
		{"retries over 2", "PUT", fnPath, `{"MaximumRetryAttempts":3}`, 400, "InvalidParameterValueException", "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2"},
		{"negative retries", "POST", fnPath, `{"MaximumRetryAttempts":-1}`, 400, "InvalidParameterValueException", "Member must have value greater than or equal to 0"},
		{"two settings out of range", "PUT", fnPath, `{"MaximumEventAgeInSeconds":59,"MaximumRetryAttempts":9}`, 400, "InvalidParameterValueException", "2 validation errors detected: Value '9' at 'maximumRetryAttempts'"},
		{"age over 6 hours", "PUT", fnPath, `{"MaximumEventAgeInSeconds":21601}`, 400, "InvalidParameterValueException", "Value '21601' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value less than or equal to 21600"},
		{"destination of another service", "PUT", fnPath, `{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:dynamodb:us-east-1:123456789012:table/t"}}}`, 400, "InvalidParameterValueException", `'destinationConfig.onSuccess.destination' failed to satisfy constraint: destination "arn:aws:dynamodb:us-east-1:123456789012:table/t": service "dynamodb" cannot receive invocation records`},
		{"bucket destination", "PUT", fnPath, `{"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:s3:::my-bucket"}}}`, 400, "InvalidParameterValueException", "S3 buckets receive only the failures of event source mappings"},
		{"the function as its own destination", "PUT", fnPath, `{"DestinationConfig":{"OnFailure":{"Destination":"` + fnARN + `:live"}}}`, 400, "InvalidParameterValueException", "a function cannot be its own destination"},
		{"not an ARN", "PUT", fnPath, `{"DestinationConfig":{"OnFailure":{"Destination":"my-queue"}}}`, 400, "InvalidParameterValueException", `destination "my-queue" is not an ARN`},
		{"misspelt setting", "PUT", fnPath, `{"MaximumRetryAttempt":1}`, 400, "InvalidParameterValueException", `unknown field "MaximumRetryAttempt"`},
		{"setting of the wrong type", "PUT", fnPath, `{"MaximumRetryAttempts":"1"}`, 400, "InvalidParameterValueException", "cannot unmarshal string"},
		{"not JSON", "PUT", fnPath, `{"MaximumRetryAttempts":`, 400, "InvalidParameterValueException", "reading the request body"},
		{"two JSON values", "PUT", fnPath, `{} {}`, 400, "InvalidParameterValueException", "more than one JSON value"},
		{"failed requests changed nothing", "GET", fnPath, "", 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{"Destination":"` + queue + `"}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":1}`},
		{"put replaces the whole configuration", "PUT", fnPath, `{"MaximumRetryAttempts":2}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumRetryAttempts":2}`},
		{"get", "GET", fnPath + "?Qualifier=$LATEST", "", 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumRetryAttempts":2}`},
		{"put by ARN on an alias", "PUT", "/2019-09-25/functions/" + fnARN + "/event-invoke-config?Qualifier=live", `{}`, 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:live","LastModified":` + lastMod + `}`},
		{"get by partial ARN with the alias appended", "GET", "/2019-09-25/functions/123456789012:function:my-function:live/event-invoke-config", "", 200, "",
			`{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:live","LastModified":` + lastMod + `}`},
		{"list", "GET", fnPath + "/list", "", 200, "",
			`{"FunctionEventInvokeConfigs":[{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumRetryAttempts":2},{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:live","LastModified":` + lastMod + `}]}`},
		{"list a page", "GET", fnPath + "/list?MaxItems=1", "", 200, "",
			`{"FunctionEventInvokeConfigs":[{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:$LATEST","LastModified":` + lastMod + `,"MaximumRetryAttempts":2}],"NextMarker":"MQ"}`},
		{"list the next page", "GET", fnPath + "/list?MaxItems=1&Marker=MQ", "", 200, "",
			`{"FunctionEventInvokeConfigs":[{"DestinationConfig":{"OnSuccess":{},"OnFailure":{}},"FunctionArn":"` + fnARN + `:live","LastModified":` + lastMod + `}]}`},
		{"list with too many items", "GET", fnPath + "/list?MaxItems=51", "", 400, "InvalidParameterValueException", "Value '51' at 'maxItems'"},
		{"list with a made-up marker", "GET", fnPath + "/list?Marker=nope", "", 400, "InvalidParameterValueException", `Marker "nope" is not one that List returned`},
		{"delete the alias's", "DELETE", fnPath + "?Qualifier=live", "", 204, "", ""},
		{"get it after its delete", "GET", fnPath + "?Qualifier=live", "", 404, "ResourceNotFoundException", fnARN + ":live doesn't have an EventInvokeConfig"},
		{"name of the wrong pattern", "GET", "/2019-09-25/functions/my%20function/event-invoke-config", "", 400, "InvalidParameterValueException", "Value 'my function' at 'functionName' failed to satisfy constraint"},
		{"qualifier of the wrong pattern", "GET", fnPath + "?Qualifier=a%20b", "", 400, "InvalidParameterValueException", "at 'qualifier' failed to satisfy constraint"},
		{"qualifiers that differ", "GET", "/2019-09-25/functions/my-function:live/event-invoke-config?Qualifier=$LATEST", "", 400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."},
		{"another function", "PUT", "/2019-09-25/functions/other/event-invoke-config", `{}`, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:other"},
		{"another region", "GET", "/2019-09-25/functions/arn:aws:lambda:eu-west-1:123456789012:function:my-function/event-invoke-config", "", 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:eu-west-1:"},
		{"a version that does not exist", "PUT", fnPath + "?Qualifier=7", `{}`, 404, "ResourceNotFoundException", "Function not found: " + fnARN + ":7"},
		{"an operation that does not exist", "GET", "/2019-09-25/functions/my-function/aliases", "", 404, "UnknownOperationException", "GET /2019-09-25/functions/my-function/aliases"},
	}
	for _, st := range steps {
		req, _ := http.NewRequest(st.method, srv.URL+st.path, strings.NewReader(st.body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != st.status || resp.Header.Get("X-Amzn-ErrorType") != st.errType {
			t.Errorf("%s: %d %q %s; want %d %q", st.name, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b, st.status, st.errType)
			continue
		}
		if st.errType == "" {
			if got, want := anyTime(string(b)), anyTime(st.want); got != want {
				t.Errorf("%s: body\n%s\nwant\n%s", st.name, b, st.want)
			}
			continue
		}
		var e errorBody
		if err := json.Unmarshal(b, &e); err != nil || e.Type != "User" || !strings.Contains(e.Message, st.want) {
			t.Errorf("%s: error body %s, want Type User and a Message with %q", st.name, b, st.want)
		}
	}
	if got := s.Settings("$LATEST"); got != (Settings{MaxRetries: 2, MaxAge: 6 * time.Hour}) {
		t.Errorf("settings with the age unset = %+v, want the 6 h default", got)
	}
}

// A write that comes while another is in progress on the same configuration is refused
// with 409, as Lambda refuses concurrent updates; the first then completes.
func TestConcurrentWriteConflicts(t *testing.T) {
	s, _ := newTestStore(time.Second)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"MaximumRetryAttempts":1}`
	// The server asks for the body, with 100 Continue, once the handler reads it: the
	// write is in progress from then until the body is sent.
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", fnPath, len(body))
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, "100 Continue") {
		t.Fatalf("first write: %q %v, want 100 Continue", status, err)
	}
	if blank, err := r.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q %v", blank, err)
	}
	second, err := srv.Client().Do(mustRequest(t, "POST", srv.URL+fnPath, `{"MaximumRetryAttempts":2}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(second.Body)
	second.Body.Close()
	if second.StatusCode != 409 || second.Header.Get("X-Amzn-ErrorType") != "ResourceConflictException" || !strings.Contains(string(b), "could not be updated due to a concurrent update operation") {
		t.Errorf("second write: %d %s", second.StatusCode, b)
	}
	io.WriteString(conn, body)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("first write finished with %d", resp.StatusCode)
	}
	if got := s.Settings("$LATEST").MaxRetries; got != 1 {
		t.Errorf("MaxRetries = %d, want the first write's 1", got)
	}
}

var lastModified = regexp.MustCompile(`"LastModified":[0-9.]+`)

// anyTime hides LastModified's value.
func anyTime(body string) string { return lastModified.ReplaceAllString(body, `"LastModified":T`) }

// LastModified is the time of the last write, in epoch seconds with milliseconds.
func TestLastModified(t *testing.T) {
	s, c := newTestStore(0)
	put, _ := s.Put("$LATEST", Input{})
	c.advance(1500 * time.Millisecond)
	got, _ := s.Get("$LATEST")
	r := 1
	updated, _ := s.Update("$LATEST", Input{MaximumRetryAttempts: &r})
	for _, tt := range []struct {
		name string
		c    Config
		want string
	}{{"put", put, lastMod}, {"get", got, lastMod}, {"update", updated, "1573686022.979"}} {
		b, _ := json.Marshal(tt.c)
		if !strings.Contains(string(b), `"LastModified":`+tt.want) {
			t.Errorf("%s: %s, want LastModified %s", tt.name, b, tt.want)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil || !time.Time(back.LastModified).Equal(time.Time(tt.c.LastModified)) {
			t.Errorf("%s: read back %v, %v", tt.name, time.Time(back.LastModified), err)
		}
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The API takes 15 requests a second, Lambda's control-plane limit, and answers the rest
// with 429 until the bucket refills.
func TestRateLimit(t *testing.T) {
	s, c := newTestStore(0)
	h := s.Handler()
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", fnPath+"/list", nil))
		return w
	}
	for i := range requestsPerSecond {
		if w := get(); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := get()
	if w.Code != 429 || w.Header().Get("X-Amzn-ErrorType") != "TooManyRequestsException" || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "Rate exceeded") {
		t.Errorf("request 16: %d %v %s", w.Code, w.Header(), w.Body)
	}
	c.advance(time.Second/requestsPerSecond + time.Millisecond)
	if w := get(); w.Code != 200 {
		t.Errorf("after 1/15 s: %d, want a refilled token", w.Code)
	}
}

// An internal failure is answered as Lambda's ServiceException, not a dropped connection.
func TestInternalError(t *testing.T) {
	w := httptest.NewRecorder()
	recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("broken") })).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || w.Header().Get("X-Amzn-ErrorType") != "ServiceException" || w.Body.String() != `{"Type":"Service","Message":"internal error: broken"}` {
		t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		want              Settings
	}{
		{"settings alone", `{"MaximumRetryAttempts":0,"MaximumEventAgeInSeconds":60,"DestinationConfig":{"OnFailure":{"Destination":"` + queue + `"}}}`, "",
			Settings{MaxRetries: 0, MaxAge: time.Minute, OnFailure: queue}},
		{"with the CLI's FunctionName", `{"FunctionName":"` + fnARN + `","Qualifier":"$LATEST","MaximumRetryAttempts":1}`, "", Settings{MaxRetries: 1, MaxAge: DefaultEventAge}},
		{"another function", `{"FunctionName":"other"}`, "Function not found", Settings{}},
		{"out of range", `{"MaximumEventAgeInSeconds":30}`, "Value '30' at 'maximumEventAgeInSeconds'", Settings{}},
		{"misspelt", `{"MaxRetryAttempts":1}`, `unknown field "MaxRetryAttempts"`, Settings{}},
	}
	for _, tt := range tests {
		s, _ := newTestStore(time.Second)
		err := s.Load([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if got := s.Settings("$LATEST"); err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}
