package emulator

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
)

// InvokePath is the invoke endpoint of the Runtime Interface Emulator, which tools and
// tests already call: POST with the event as the body.
const InvokePath = "/2015-03-31/functions/function/invocations"

// InvokeHandler serves the invoke endpoint: InvokePath, and the same path with the
// function's own name. X-Amz-Invocation-Type may be RequestResponse (the default) or DryRun;
// X-Amzn-Trace-Id is passed on; X-Amz-Client-Context is base64 JSON, as the Invoke API
// takes it.
func (e *Emulator) InvokeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+InvokePath, e.serveInvoke)
	// A function named "function" has InvokePath as its own path, which may be registered once.
	if named := "/2015-03-31/functions/" + e.cfg.FunctionName + "/invocations"; named != InvokePath {
		mux.HandleFunc("POST "+named, e.serveInvoke)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		invokeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("%s %s: the function is invoked with POST %s", r.Method, r.URL.Path, InvokePath))
	})
	return mux
}

func invokeError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("X-Amzn-ErrorType", errorType)
	writeJSON(w, status, delivery.ErrorDocument(errorType, message))
}

func (e *Emulator) serveInvoke(w http.ResponseWriter, r *http.Request) {
	switch t := r.Header.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		invokeError(w, http.StatusBadRequest, "InvalidParameterValueException", "asynchronous invocation (Event) is not supported by this emulator yet; use RequestResponse")
		return
	default:
		invokeError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("X-Amz-Invocation-Type %q: must be RequestResponse, Event or DryRun", t))
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		invokeError(w, http.StatusBadRequest, "InvalidRequestContentException", "reading the payload: "+err.Error())
		return
	}
	if len(payload) > MaxPayloadBytes {
		invokeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayloadBytes))
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	req := Request{Payload: payload, TraceHeader: r.Header.Get("X-Amzn-Trace-Id"), CognitoIdentity: r.Header.Get("X-Amz-Cognito-Identity")}
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			invokeError(w, http.StatusBadRequest, "InvalidRequestContentException", "X-Amz-Client-Context must be base64")
			return
		}
		req.ClientContext = string(b)
	}
	resp, err := e.Invoke(r.Context(), req)
	switch {
	case errors.Is(err, ErrClosed):
		invokeError(w, http.StatusServiceUnavailable, "ServiceException", "the emulator is shutting down")
		return
	case err != nil:
		invokeError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	h := w.Header()
	h.Set("X-Amzn-Requestid", resp.RequestID)
	h.Set("X-Amz-Executed-Version", e.cfg.FunctionVersion)
	if resp.FunctionError != "" {
		h.Set("X-Amz-Function-Error", resp.FunctionError)
	}
	body := resp.Payload
	if len(body) == 0 {
		body = []byte("null")
	}
	writeJSON(w, http.StatusOK, body)
}
