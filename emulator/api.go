package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/delivery"
)

// Header names of the Runtime and Extensions APIs.
const (
	hRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hDeadline        = "Lambda-Runtime-Deadline-Ms"
	hInvokedARN      = "Lambda-Runtime-Invoked-Function-Arn"
	hTraceID         = "Lambda-Runtime-Trace-Id"
	hClientContext   = "Lambda-Runtime-Client-Context"
	hCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hFunctionError   = "Lambda-Runtime-Function-Error-Type"
	hResponseMode    = "Lambda-Runtime-Function-Response-Mode"
	hExtensionName   = "Lambda-Extension-Name"
	hExtensionID     = "Lambda-Extension-Identifier"
	hEventID         = "Lambda-Extension-Event-Identifier"
	hAcceptFeature   = "Lambda-Extension-Accept-Feature"
	hExtensionError  = "Lambda-Extension-Function-Error-Type"
)

// maxRequestBytes bounds the small API documents (register, subscribe, error reports other
// than an invocation's).
const maxRequestBytes = 1 << 20

func (e *Emulator) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", e.runtimeNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", e.runtimeResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", e.runtimeError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", e.runtimeInitError)
	mux.HandleFunc("POST /2020-01-01/extension/register", e.register)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", e.extensionNext)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", e.extensionError)
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", e.extensionError)
	for _, p := range []string{"/2022-07-01/telemetry", "/2022-07-01/telemetry/"} {
		mux.HandleFunc("PUT "+p, e.subscribe(delivery.Telemetry))
	}
	for _, p := range []string{"/2020-08-15/logs", "/2020-08-15/logs/"} {
		mux.HandleFunc("PUT "+p, e.subscribe(delivery.Logs))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "InvalidRoute", fmt.Sprintf("%s %s is not an operation of the Runtime, Extensions, Telemetry or Logs API", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, errorType, message string) {
	writeJSON(w, status, delivery.ErrorDocument(errorType, message))
}

var accepted = []byte(`{"status":"OK"}`)

// env is the environment a request belongs to, or an answer saying there is none.
func (e *Emulator) envFor(w http.ResponseWriter) *environment {
	env := e.current()
	if env == nil {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "no execution environment is running")
	}
	return env
}

func (e *Emulator) runtimeNext(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	env.mu.Lock()
	now := time.Now()
	switch env.state {
	case stateInit:
		env.rtNextCalled = true
	case stateInvoking:
		if inv := env.cur; inv != nil && inv.answered && !inv.doneNext {
			inv.doneNext, inv.nextAt = true, now
		}
	}
	env.notify()
	env.mu.Unlock()
	select {
	case inv := <-env.rtInvoke:
		h := w.Header()
		h.Set(hRequestID, inv.id)
		h.Set(hDeadline, fmt.Sprint(inv.deadline.UnixMilli()))
		h.Set(hInvokedARN, inv.arn)
		if t := inv.trace.runtimeHeader(); t != "" {
			h.Set(hTraceID, t)
		}
		if inv.clientContext != "" {
			h.Set(hClientContext, inv.clientContext)
		}
		if inv.cognito != "" {
			h.Set(hCognitoIdentity, inv.cognito)
		}
		writeJSON(w, http.StatusOK, inv.payload)
	case <-r.Context().Done():
	case <-env.done:
		writeError(w, http.StatusInternalServerError, "Runtime.EnvironmentShutDown", "the execution environment is shutting down; exit")
	}
}

// invocationFor checks that id is the invocation in progress and not answered yet.
// Called under env.mu.
func invocationFor(env *environment, id string) (*invocation, int, []byte) {
	inv := env.cur
	if inv == nil || inv.id != id || env.state != stateInvoking {
		return nil, http.StatusBadRequest, delivery.ErrorDocument("InvalidRequestID", fmt.Sprintf("request id %s is not the invocation in progress", id))
	}
	if inv.answered {
		return nil, http.StatusForbidden, delivery.ErrorDocument("InvalidStateTransition", fmt.Sprintf("invocation %s was already answered", id))
	}
	return inv, 0, nil
}

func (e *Emulator) runtimeResponse(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	arrived := time.Now()
	id := r.PathValue("id")
	if r.Header.Get(hResponseMode) == "streaming" {
		env.refuse(w, id, arrived, http.StatusBadRequest, &failure{statusError, "Runtime.StreamingNotSupported",
			"lambda-emulator does not support response streaming; send the response buffered"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "reading the response: "+err.Error())
		return
	}
	if len(body) > MaxPayloadBytes {
		env.refuse(w, id, arrived, http.StatusRequestEntityTooLarge, &failure{statusError, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)})
		return
	}
	env.settle(w, id, arrived, func(inv *invocation) { inv.response = body }, http.StatusAccepted, accepted)
}

// settle records the runtime's answer to invocation id (what set adds to it) and replies
// status and reply to the runtime, or refuses when id is not the invocation in progress.
func (env *environment) settle(w http.ResponseWriter, id string, arrived time.Time, set func(*invocation), status int, reply []byte) {
	env.mu.Lock()
	defer env.mu.Unlock()
	inv, st, refusal := invocationFor(env, id)
	if inv == nil {
		writeJSON(w, st, refusal)
		return
	}
	inv.answered, inv.answerAt, inv.answeredAt = true, arrived, time.Now()
	set(inv)
	env.notify()
	writeJSON(w, status, reply)
}

// refuse fails the invocation with f, which the caller receives, and tells the runtime why.
func (env *environment) refuse(w http.ResponseWriter, id string, arrived time.Time, status int, f *failure) {
	doc := delivery.ErrorDocument(f.errorType, f.message)
	env.settle(w, id, arrived, func(inv *invocation) { inv.fnError, inv.errorBody = f, doc }, status, doc)
}

// errorReport reads an ErrorRequest: its type from the header, else from the body, and the
// body as the caller will see it.
func errorReport(r *http.Request, header, fallback string) (*failure, []byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the error report: %w", err)
	}
	if len(body) > MaxPayloadBytes {
		return nil, nil, fmt.Errorf("error report of more than %d bytes", MaxPayloadBytes)
	}
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	isDoc := json.Unmarshal(body, &doc) == nil
	f := &failure{status: statusError, errorType: r.Header.Get(header), message: doc.ErrorMessage}
	if f.errorType == "" {
		f.errorType = doc.ErrorType
	}
	if f.errorType == "" {
		f.errorType = fallback
	}
	if !isDoc {
		f.message = string(body)
		body = delivery.ErrorDocument(f.errorType, f.message)
	}
	return f, body, nil
}

func (e *Emulator) runtimeError(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	arrived := time.Now()
	f, body, err := errorReport(r, hFunctionError, "Unhandled")
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", err.Error())
		return
	}
	env.settle(w, r.PathValue("id"), arrived, func(inv *invocation) { inv.fnError, inv.errorBody = f, body }, http.StatusAccepted, accepted)
}

func (e *Emulator) runtimeInitError(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	f, _, err := errorReport(r, hFunctionError, "Runtime.Unknown")
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", err.Error())
		return
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.state != stateInit {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "init/error is accepted only during the init phase")
		return
	}
	env.rtInitError = f
	env.notify()
	writeJSON(w, http.StatusAccepted, accepted)
}

func (e *Emulator) register(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	name := r.Header.Get(hExtensionName)
	if name == "" {
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "the "+hExtensionName+" header is missing: send the extension's file name")
		return
	}
	var req struct {
		Events            []string        `json:"events"`
		ConfigurationKeys json.RawMessage `json:"configurationKeys"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.ConfigurationKeys != nil {
		writeError(w, http.StatusForbidden, "InvalidRequestFormat", `the register body must be {"events":[...]} with INVOKE and SHUTDOWN only`)
		return
	}
	for _, ev := range req.Events {
		if ev != "INVOKE" && ev != "SHUTDOWN" {
			writeError(w, http.StatusForbidden, "Extension.InvalidEventType", fmt.Sprintf("event %q is not INVOKE or SHUTDOWN", ev))
			return
		}
	}
	env.mu.Lock()
	x, status, errType, msg := env.registerLocked(name, req.Events)
	env.mu.Unlock()
	if x == nil {
		writeError(w, status, errType, msg)
		return
	}
	env.emit(delivery.TypeExtension, delivery.ExtensionState{Name: name, State: "Ready", Events: orEmpty(req.Events)})
	answer := map[string]string{"functionName": e.cfg.FunctionName, "functionVersion": e.cfg.FunctionVersion, "handler": e.cfg.Handler}
	if slices.Contains(strings.Split(strings.ReplaceAll(r.Header.Get(hAcceptFeature), " ", ""), ","), "accountId") {
		answer["accountId"] = e.cfg.AccountID
	}
	b, _ := json.Marshal(answer)
	w.Header().Set(hExtensionID, x.id)
	writeJSON(w, http.StatusOK, b)
}

func (env *environment) registerLocked(name string, events []string) (*extension, int, string, string) {
	var x *extension
	registered := 0
	for _, c := range env.exts {
		if c.name == name {
			x = c
		}
		if c.registered {
			registered++
		}
	}
	switch {
	case x != nil && x.registered:
		return nil, http.StatusForbidden, "Extension.InvalidExtensionState", fmt.Sprintf("extension %s is already registered", name)
	case env.state != stateInit || env.runtime != nil:
		return nil, http.StatusForbidden, "Extension.RegistrationClosed", "extensions register during the init phase, before the runtime starts"
	case x == nil:
		return nil, http.StatusForbidden, "Extension.InvalidExtensionName", fmt.Sprintf("no file named %q in the extensions directory: the name must be the executable's file name", name)
	case registered >= maxExtensions:
		return nil, http.StatusForbidden, "Extension.TooManyExtensions", fmt.Sprintf("Extension limit (%d) reached", maxExtensions)
	}
	x.registered, x.id, x.events = true, newUUID(), orEmpty(events)
	env.notify()
	return x, 0, "", ""
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// extensionByID finds the caller of an Extensions, Telemetry or Logs API call. Called
// under env.mu.
func (env *environment) extensionByID(r *http.Request) (*extension, int, string, string) {
	id := r.Header.Get(hExtensionID)
	if id == "" {
		return nil, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "the " + hExtensionID + " header is missing"
	}
	for _, x := range env.exts {
		if x.registered && x.id == id {
			if x.failure != nil && x.failure.errorType != "Extension.Crash" {
				return nil, http.StatusForbidden, "Extension.InvalidExtensionState", "extension " + x.name + " reported an error and must exit"
			}
			return x, 0, "", ""
		}
	}
	return nil, http.StatusForbidden, "Extension.UnknownExtensionIdentifier", "no registered extension has identifier " + id
}

func (e *Emulator) extensionNext(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	env.mu.Lock()
	x, status, errType, msg := env.extensionByID(r)
	if x == nil {
		env.mu.Unlock()
		writeError(w, status, errType, msg)
		return
	}
	if len(x.queue) == 0 {
		x.ready, x.readyAt = true, time.Now()
		if x.startup == 0 {
			x.startup = x.readyAt.Sub(x.startedAt)
		}
	}
	env.notify()
	env.mu.Unlock()
	select {
	case body := <-x.queue:
		w.Header().Set(hEventID, newUUID())
		writeJSON(w, http.StatusOK, body)
	case <-r.Context().Done():
	case <-env.done:
		writeError(w, http.StatusInternalServerError, "Extension.EnvironmentShutDown", "the execution environment has shut down; exit")
	}
}

func (e *Emulator) extensionError(w http.ResponseWriter, r *http.Request) {
	env := e.envFor(w)
	if env == nil {
		return
	}
	f, _, err := errorReport(r, hExtensionError, "")
	if err == nil && f.errorType == "" {
		err = errors.New("the " + hExtensionError + " header is required")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", err.Error())
		return
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	x, status, errType, msg := env.extensionByID(r)
	if x == nil {
		writeError(w, status, errType, msg)
		return
	}
	f.message = fmt.Sprintf("extension %s: %s", x.name, f.message)
	x.failure = f
	env.notify()
	writeJSON(w, http.StatusAccepted, accepted)
}

func (e *Emulator) subscribe(api delivery.API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		env := e.envFor(w)
		if env == nil {
			return
		}
		env.mu.Lock()
		x, status, errType, msg := env.extensionByID(r)
		env.mu.Unlock()
		if x == nil {
			writeError(w, status, errType, msg)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "reading the subscription: "+err.Error())
			return
		}
		status, answer, ev := env.hub.Subscribe(api, x.name, body)
		if ev != nil {
			env.publish(*ev)
		}
		writeJSON(w, status, answer)
	}
}
