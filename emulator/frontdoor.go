package emulator

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
	"github.com/lambda-otel/lambda-otel/emulator/eventconfig"
)

// InvokePath is the invoke endpoint of the Runtime Interface Emulator, which tools and
// tests already call: POST with the event as the body.
const InvokePath = "/2015-03-31/functions/function/invocations"

// InvokeHandler serves the front door of the function:
//
//   - the invoke endpoint, POST /2015-03-31/functions/{FunctionName}/invocations, where
//     FunctionName is the function's name or ARN (a version or alias may be appended, or
//     given as ?Qualifier=), or "function" as in InvokePath. X-Amz-Invocation-Type may be
//     RequestResponse (the default), Event (queued, answered 202) or DryRun;
//     X-Amzn-Trace-Id is passed on; X-Amz-Client-Context is base64 JSON, as the Invoke API
//     takes it.
//   - the event-invoke config API under /2019-09-25/ (see eventconfig.Store.Handler).
func (e *Emulator) InvokeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", e.serveInvoke)
	mux.Handle(eventconfig.Path, e.store.Handler())
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
	invocationType := r.Header.Get("X-Amz-Invocation-Type")
	limit := MaxPayloadBytes
	switch invocationType {
	case "", "RequestResponse", "DryRun":
	case "Event":
		limit = MaxAsyncPayloadBytes
	default:
		invokeError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("X-Amz-Invocation-Type %q: must be RequestResponse, Event or DryRun", invocationType))
		return
	}
	// "function" is the name of the Runtime Interface Emulator's endpoint, InvokePath.
	qualifier := r.URL.Query().Get("Qualifier")
	if name := r.PathValue("name"); name != "function" || qualifier != "" {
		if name == "function" {
			name = e.cfg.FunctionName
		}
		var aerr *eventconfig.Error
		if qualifier, aerr = e.store.Resolve(name, qualifier); aerr != nil {
			invokeError(w, aerr.Status, aerr.Type, aerr.Message)
			return
		}
	}
	if invocationType == "DryRun" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		invokeError(w, http.StatusBadRequest, "InvalidRequestContentException", "reading the payload: "+err.Error())
		return
	}
	if len(payload) > limit {
		invokeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", limit))
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	req := Request{Payload: payload, TraceHeader: r.Header.Get("X-Amzn-Trace-Id"), CognitoIdentity: r.Header.Get("X-Amz-Cognito-Identity"), Qualifier: qualifier}
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			invokeError(w, http.StatusBadRequest, "InvalidRequestContentException", "X-Amz-Client-Context must be base64")
			return
		}
		req.ClientContext = string(b)
	}
	if invocationType == "Event" {
		e.serveAsync(w, req)
		return
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

// serveAsync queues an Event invocation: 202 with its request id, or why it was refused.
func (e *Emulator) serveAsync(w http.ResponseWriter, req Request) {
	id, err := e.InvokeAsync(req)
	switch {
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", "1")
		invokeError(w, http.StatusTooManyRequests, "TooManyRequestsException", fmt.Sprintf("the asynchronous queue holds its limit of %d events", e.cfg.MaxQueuedEvents))
	case errors.Is(err, ErrClosed):
		invokeError(w, http.StatusServiceUnavailable, "ServiceException", "the emulator is shutting down")
	case err != nil:
		invokeError(w, http.StatusInternalServerError, "ServiceException", err.Error())
	default:
		w.Header().Set("X-Amzn-Requestid", id)
		w.WriteHeader(http.StatusAccepted)
	}
}
