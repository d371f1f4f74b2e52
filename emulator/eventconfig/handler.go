package eventconfig

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Path is the API's version prefix, under which Handler serves.
const Path = "/2019-09-25/"

// maxBody bounds a request body; a valid one is a few hundred bytes.
const maxBody = 64 << 10

// maxItems is the largest page List gives, and the page size when MaxItems is not set.
const maxItems = 50

// Handler serves the API:
//
//	PUT    /2019-09-25/functions/{FunctionName}/event-invoke-config?Qualifier=  Put (200)
//	POST   /2019-09-25/functions/{FunctionName}/event-invoke-config?Qualifier=  Update (200)
//	GET    /2019-09-25/functions/{FunctionName}/event-invoke-config?Qualifier=  Get (200)
//	DELETE /2019-09-25/functions/{FunctionName}/event-invoke-config?Qualifier=  Delete (204)
//	GET    /2019-09-25/functions/{FunctionName}/event-invoke-config/list?Marker=&MaxItems=
//
// Errors carry X-Amzn-ErrorType and a {"Type","Message"} body, as Lambda's do.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	const one = Path + "functions/{name}/event-invoke-config"
	mux.HandleFunc("PUT "+one, s.serveWrite(false))
	mux.HandleFunc("POST "+one, s.serveWrite(true))
	mux.HandleFunc("GET "+one, s.serveQualified(func(q string, w http.ResponseWriter) *Error {
		c, err := s.Get(q)
		if err == nil {
			writeJSON(w, http.StatusOK, c)
		}
		return err
	}))
	mux.HandleFunc("DELETE "+one, s.serveQualified(func(q string, w http.ResponseWriter) *Error {
		err := s.Delete(q)
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
		return err
	}))
	mux.HandleFunc("GET "+one+"/list", s.serveList)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{http.StatusNotFound, "UnknownOperationException",
			fmt.Sprintf("%s %s is not an operation of the event-invoke-config API", r.Method, r.URL.Path)})
	})
	return recoverer(mux)
}

// recoverer answers a panic as the API's internal error instead of dropping the connection.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				writeError(w, &Error{http.StatusInternalServerError, "ServiceException", fmt.Sprintf("internal error: %v", v)})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// admit applies the rate limit and resolves the function, answering when either fails.
func (s *Store) admit(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !s.allow() {
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{http.StatusTooManyRequests, "TooManyRequestsException",
			fmt.Sprintf("Rate exceeded: at most %d requests per second", requestsPerSecond)})
		return "", false
	}
	q, err := s.Resolve(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		writeError(w, err)
		return "", false
	}
	return q, true
}

func (s *Store) serveWrite(merge bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, ok := s.admit(w, r)
		if !ok {
			return
		}
		// The write is in progress from here until committed, the body's reading included,
		// so a second write meanwhile conflicts as it would in Lambda.
		if err := s.begin(q); err != nil {
			writeError(w, err)
			return
		}
		defer s.end(q)
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		switch {
		case err != nil:
			writeError(w, invalid("reading the request body: %v", err))
			return
		case len(body) > maxBody:
			writeError(w, invalid("the request body is more than %d bytes", maxBody))
			return
		}
		var in Input
		if err := decodeInput(body, &in); err != nil {
			writeError(w, invalid("%s", err))
			return
		}
		write := s.Put
		if merge {
			write = s.Update
		}
		c, aerr := write(q, in)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		writeJSON(w, http.StatusOK, c)
	}
}

// serveQualified serves an operation on the configuration of one qualifier.
func (s *Store) serveQualified(op func(q string, w http.ResponseWriter) *Error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, ok := s.admit(w, r)
		if !ok {
			return
		}
		if err := op(q, w); err != nil {
			writeError(w, err)
		}
	}
}

// listPage is List's answer.
type listPage struct {
	FunctionEventInvokeConfigs []Config `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string   `json:"NextMarker,omitempty"`
}

func (s *Store) serveList(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.admit(w, r); !ok {
		return
	}
	query := r.URL.Query()
	n := maxItems
	if v := query.Get("MaxItems"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxItems {
			writeError(w, invalid("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must be an integer from 1 to %d", v, maxItems))
			return
		}
	}
	all := s.List()
	start := 0
	if m := query.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		i, aerr := strconv.Atoi(string(b))
		if err != nil || aerr != nil || i < 0 || i > len(all) {
			writeError(w, invalid("Marker %q is not one that List returned", m))
			return
		}
		start = i
	}
	page := listPage{FunctionEventInvokeConfigs: all[start:min(start+n, len(all))]}
	if start+n < len(all) {
		page.NextMarker = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(start + n)))
	}
	writeJSON(w, http.StatusOK, page)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &Error{http.StatusInternalServerError, "ServiceException", "encoding the answer: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// errorBody is the body of an error answer; Type is User for the caller's errors and
// Service for the service's own.
type errorBody struct {
	Type    string `json:"Type"`
	Message string `json:"Message"`
}

// writeError answers err as Lambda does: its status, X-Amzn-ErrorType, and a
// {"Type","Message"} body.
func writeError(w http.ResponseWriter, err *Error) {
	who := "User"
	if err.Status >= 500 {
		who = "Service"
	}
	b, _ := json.Marshal(errorBody{Type: who, Message: err.Message})
	w.Header().Set("X-Amzn-ErrorType", err.Type)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Status)
	w.Write(b)
}
