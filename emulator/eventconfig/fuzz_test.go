package eventconfig

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzPut: any Put body is either refused with 400 and changes nothing, or accepted, after
// which Get answers exactly what Put did and the settings are within their ranges.
func FuzzPut(f *testing.F) {
	for _, seed := range []string{
		`{"DestinationConfig":{"OnFailure":{"Destination":"string"},"OnSuccess":{"Destination":"string"}},"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":0}`,
		`{"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sqs:us-east-1:123456789012:destination"}}}`,
		`{"MaximumEventAgeInSeconds":3600,"MaximumRetryAttempts":0}`,
		`{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:events:us-east-1:123456789012:event-bus/default"}}}`,
		`{}`, ``, `null`, `{"MaximumRetryAttempts":1e2}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s, _ := newTestStore(time.Second)
		h := s.Handler()
		put := httptest.NewRecorder()
		h.ServeHTTP(put, httptest.NewRequest("PUT", fnPath, strings.NewReader(body)))
		get := httptest.NewRecorder()
		h.ServeHTTP(get, httptest.NewRequest("GET", fnPath, nil))
		switch put.Code {
		case 400:
			if get.Code != 404 {
				t.Fatalf("a refused Put stored a configuration: %s", get.Body)
			}
		case 200:
			if get.Code != 200 || get.Body.String() != put.Body.String() {
				t.Fatalf("Put answered %s, Get %d %s", put.Body, get.Code, get.Body)
			}
			st := s.Settings("$LATEST")
			if st.MaxRetries < MinRetryAttempts || st.MaxRetries > MaxRetryAttempts || st.MaxAge < MinEventAgeSeconds*time.Second || st.MaxAge > DefaultEventAge {
				t.Fatalf("accepted settings out of range: %+v", st)
			}
		default:
			t.Fatalf("Put answered %d %s", put.Code, put.Body)
		}
	})
}
