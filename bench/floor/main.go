// Command floor is the least an external extension can be: it registers for INVOKE and
// SHUTDOWN and asks for the next event until it is shut down. The benchmark harness
// measures lambda-otel against it, so that what is left is lambda-otel's own cost.
//
// With FLOOR_WAIT_RUNTIME_DONE=1 it also subscribes to the platform stream with the
// Telemetry API's shortest buffering (25 ms) and, after each INVOKE, waits for that
// invocation's platform.runtimeDone before asking for the next event: the least any
// extension that exports at the end of an invocation must wait.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

const name = "floor"

func main() {
	if err := run(context.Background(), os.Getenv("AWS_LAMBDA_RUNTIME_API"), os.Getenv("FLOOR_WAIT_RUNTIME_DONE") == "1"); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// event is the part of an Extensions API event the floor reads.
type event struct {
	EventType  string `json:"eventType"`
	RequestID  string `json:"requestId"`
	DeadlineMs int64  `json:"deadlineMs"`
}

func run(ctx context.Context, api string, waitDone bool) error {
	base := "http://" + api + "/2020-01-01/extension"
	resp, err := call(ctx, http.MethodPost, base+"/register", map[string]string{"Lambda-Extension-Name": name}, `{"events":["INVOKE","SHUTDOWN"]}`)
	if err != nil {
		return fmt.Errorf("registering: %w", err)
	}
	id := resp.Header.Get("Lambda-Extension-Identifier")
	var done *doneSet
	if waitDone {
		if done, err = subscribe(ctx, api, id); err != nil {
			return err
		}
	}
	for {
		ev, err := next(ctx, base, id)
		if err != nil {
			return fmt.Errorf("asking for the next event: %w", err)
		}
		if ev.EventType == "SHUTDOWN" {
			return nil
		}
		if done != nil {
			done.wait(ev.RequestID, time.UnixMilli(ev.DeadlineMs))
		}
	}
}

func next(ctx context.Context, base, id string) (event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/event/next", nil)
	if err != nil {
		return event{}, err
	}
	req.Header.Set("Lambda-Extension-Identifier", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return event{}, err
	}
	defer resp.Body.Close()
	var ev event
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return event{}, fmt.Errorf("reading the event: %w", err)
	}
	return ev, nil
}

func call(ctx context.Context, method, url string, headers map[string]string, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return resp, nil
}

// subscribe starts a listener on loopback and subscribes it to the platform stream.
func subscribe(ctx context.Context, api, id string) (*doneSet, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the telemetry listener: %w", err)
	}
	done := &doneSet{seen: map[string]bool{}, changed: make(chan struct{})}
	go http.Serve(ln, done) //nolint:errcheck // ends with the process
	body := fmt.Sprintf(`{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"timeoutMs":25,"maxItems":1000,"maxBytes":262144},"destination":{"protocol":"HTTP","URI":"http://%s/"}}`, ln.Addr())
	if _, err := call(ctx, http.MethodPut, "http://"+api+"/2022-07-01/telemetry", map[string]string{"Lambda-Extension-Identifier": id}, body); err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	return done, nil
}

// doneSet is the request ids whose platform.runtimeDone has arrived.
type doneSet struct {
	mu      sync.Mutex
	seen    map[string]bool
	changed chan struct{}
}

func (d *doneSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch []struct {
		Type   string `json:"type"`
		Record struct {
			RequestID string `json:"requestId"`
		} `json:"record"`
	}
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	for _, ev := range batch {
		if ev.Type == "platform.runtimeDone" {
			d.seen[ev.Record.RequestID] = true
		}
	}
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// wait returns once id's runtimeDone has arrived, or at the deadline.
func (d *doneSet) wait(id string, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		d.mu.Lock()
		seen, changed := d.seen[id], d.changed
		if seen {
			delete(d.seen, id)
		}
		d.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		}
	}
}
