package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Hub.
type Options struct {
	// OnGenerated receives each event the hub makes itself (platform.logsDropped), so that
	// the emulator can record it with the events it publishes.
	OnGenerated func(Event)
}

// Retry backoff after a failed delivery: Lambda retries "with backoff" and says no more.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 2 * time.Second
	// backlogBytes bounds the log lines kept for subscribers that have not subscribed yet.
	backlogBytes = 8 << 20
)

// Hub is the subscriptions of one execution environment. Extensions subscribe during init;
// from then on every published event goes to each subscriber whose types and API take it,
// in publication order.
type Hub struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	subs map[string]*subscriber
	// backlog is what was published before the subscription window closed: a subscriber
	// receives the environment's stream from its start, as on Lambda, where initStart
	// precedes every subscription.
	backlog        []published
	backlogLogSize int
	// backlogDropped counts the log lines the backlog had no room for, by type: records, bytes.
	backlogDropped map[string][2]int64
	sealed         bool
	resumed        chan struct{}
}

type published struct {
	ev   Event
	full []byte
	text []byte
}

// New returns a Hub with no subscribers.
func New(opts Options) *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	resumed := make(chan struct{})
	close(resumed)
	return &Hub{opts: opts, ctx: ctx, cancel: cancel, subs: map[string]*subscriber{}, backlogDropped: map[string][2]int64{}, resumed: resumed}
}

// Subscribe handles a subscribe request of extension name through api. It returns the
// status and body to answer with and, on success, the subscription event to publish.
func (h *Hub) Subscribe(api API, name string, body []byte) (int, []byte, *Event) {
	prefix := api.errorPrefix()
	cfg, problems := validate(api, body)
	if len(problems) > 0 {
		return http.StatusBadRequest, ErrorDocument(prefix+"ValidationError", strings.Join(problems, "; ")), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sealed {
		closedType := "Telemetry.SubscriptionClosed"
		if api == Logs {
			closedType = "Logs.SubscriptionClosed"
		}
		return http.StatusForbidden, ErrorDocument(closedType, api.String()+" subscriptions are accepted only during the init phase"), nil
	}
	if s, ok := h.subs[name]; ok {
		if s.config().api != api {
			return http.StatusBadRequest, ErrorDocument(prefix+"ValidationError",
				fmt.Sprintf("extension %s is already subscribed to the %s; the Telemetry and Logs APIs exclude each other", name, s.config().api)), nil
		}
		// Subscriptions are idempotent: a repeat replaces the settings and keeps the queue.
		s.setConfig(cfg)
	} else {
		s := newSubscriber(h, name, cfg)
		h.subs[name] = s
		s.replay(h.backlog, h.backlogDropped)
		h.wg.Add(1)
		go s.run()
	}
	typ := TypeTelemetrySubscription
	if api == Logs {
		typ = TypeLogsSubscription
	}
	ev := &Event{Time: time.Now(), Type: typ, Record: Subscription{Name: name, State: "Subscribed", Types: cfg.types}}
	return http.StatusOK, []byte(`"OK"`), ev
}

// Publish passes ev to every subscriber that takes it. It returns ev's encoding, so that a
// caller recording the stream does not encode each event a second time.
func (h *Hub) Publish(ev Event) []byte {
	p := published{ev: ev, full: ev.Encode()}
	if l, ok := ev.Record.(Line); ok && l.Object != nil {
		p.text = ev.encodeText()
	} else {
		p.text = p.full
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.sealed {
		h.keep(p)
	}
	for _, s := range h.subs {
		s.enqueue(p)
	}
	return p.full
}

func (h *Hub) keep(p published) {
	if IsLog(p.ev.Type) {
		if h.backlogLogSize+len(p.full) > backlogBytes {
			d := h.backlogDropped[p.ev.Type]
			h.backlogDropped[p.ev.Type] = [2]int64{d[0] + 1, d[1] + int64(len(p.full))}
			return
		}
		h.backlogLogSize += len(p.full)
	}
	h.backlog = append(h.backlog, p)
}

// Seal closes the subscription window at the end of init.
func (h *Hub) Seal() {
	h.mu.Lock()
	h.sealed = true
	h.backlog = nil
	h.mu.Unlock()
}

// Flush makes every subscriber deliver what it holds now instead of waiting for its
// limits, as Lambda does when a stream closes (a runtime crash, a shutdown).
func (h *Hub) Flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		s.flushNow()
	}
}

// Pause holds every delivery until Resume: a frozen environment receives nothing.
func (h *Hub) Pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.resumed:
		h.resumed = make(chan struct{})
	default:
	}
}

// Resume lets deliveries go on after Pause.
func (h *Hub) Resume() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.resumed:
	default:
		close(h.resumed)
	}
}

func (h *Hub) waitResumed() error {
	h.mu.Lock()
	ch := h.resumed
	h.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-h.ctx.Done():
		return h.ctx.Err()
	}
}

// Stats is what the hub did for one subscriber.
type Stats struct {
	// Delivered counts events in acknowledged deliveries (for TCP: written).
	Delivered int64
	// DroppedRecords and DroppedBytes count log lines dropped because the subscriber fell
	// behind (and were reported in platform.logsDropped when it takes platform events).
	DroppedRecords, DroppedBytes int64
	// FailedAttempts counts deliveries that failed and were retried.
	FailedAttempts int64
	// Pending counts events not delivered yet.
	Pending int
}

// Stats returns the figures of every subscriber by extension name.
func (h *Hub) Stats() map[string]Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Stats, len(h.subs))
	for name, s := range h.subs {
		out[name] = s.stats()
	}
	return out
}

// Close stops every delivery, whether done or not, and waits for the hub's goroutines.
// What is still queued is lost, as it is when Lambda removes an environment.
func (h *Hub) Close() {
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		s.client.CloseIdleConnections()
	}
}

// subscriber is one subscription: its queue and its delivery goroutine.
type subscriber struct {
	h      *Hub
	name   string
	client *http.Client
	wake   chan struct{}

	mu          sync.Mutex
	cfg         config
	queue       [][]byte
	queueBytes  int
	oldest      time.Time
	flush       bool
	dropped     [2]int64 // not yet reported: records, bytes
	st          Stats
	conn        net.Conn
	connAddress string
}

func newSubscriber(h *Hub, name string, cfg config) *subscriber {
	s := &subscriber{h: h, name: name, cfg: cfg, wake: make(chan struct{}, 1)}
	s.client = &http.Client{Transport: &http.Transport{
		// The destination names sandbox.localdomain, which only the environment resolves.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.config().addr)
		},
		MaxIdleConnsPerHost: 1,
	}}
	return s
}

func (s *subscriber) config() config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *subscriber) setConfig(c config) {
	s.mu.Lock()
	s.cfg = c
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) replay(backlog []published, dropped map[string][2]int64) {
	s.mu.Lock()
	for typ, d := range dropped {
		// Lines of a stream the subscriber does not take were never its to lose.
		if !s.cfg.accepts(typ) {
			continue
		}
		s.dropped[0] += d[0]
		s.dropped[1] += d[1]
		s.st.DroppedRecords += d[0]
		s.st.DroppedBytes += d[1]
	}
	s.mu.Unlock()
	for _, p := range backlog {
		s.enqueue(p)
	}
}

// enqueue queues an event the subscriber takes. Log lines beyond twice maxBytes of queued
// events are dropped: the platform bounds each subscriber's memory and reports the loss
// rather than slowing the function.
func (s *subscriber) enqueue(p published) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.accepts(p.ev.Type) {
		return
	}
	b := p.text
	if s.cfg.objects() {
		b = p.full
	}
	if IsLog(p.ev.Type) && s.queueBytes+len(b) > 2*s.cfg.maxBytes {
		s.dropped[0]++
		s.dropped[1] += int64(len(b))
		s.st.DroppedRecords++
		s.st.DroppedBytes += int64(len(b))
		return
	}
	first := len(s.queue) == 0
	if first {
		s.oldest = time.Now()
	}
	s.queue = append(s.queue, b)
	s.queueBytes += len(b)
	// The first event starts the timeoutMs clock, which the idle goroutine is not running.
	if first || len(s.queue) >= s.cfg.maxItems || s.queueBytes >= s.cfg.maxBytes {
		s.poke()
	}
}

func (s *subscriber) flushNow() {
	s.mu.Lock()
	s.flush = true
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Pending = len(s.queue)
	return st
}

func (s *subscriber) run() {
	defer s.h.wg.Done()
	for {
		batch, err := s.nextBatch()
		if err != nil {
			return
		}
		if err := s.deliver(batch); err != nil {
			return
		}
	}
}

// nextBatch waits until a batch is due (maxItems or maxBytes reached, timeoutMs passed since
// its oldest event, or a flush) and takes it from the queue.
func (s *subscriber) nextBatch() ([][]byte, error) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		due, wait := s.due(time.Now())
		if due {
			batch, generated := s.take()
			s.mu.Unlock()
			if generated != nil && s.h.opts.OnGenerated != nil {
				s.h.opts.OnGenerated(*generated)
			}
			return batch, nil
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.h.ctx.Done():
			return nil, s.h.ctx.Err()
		}
	}
}

// due reports whether a batch should go now, or how long to wait before looking again.
func (s *subscriber) due(now time.Time) (bool, time.Duration) {
	if len(s.queue) == 0 {
		if s.dropped[0] > 0 && s.cfg.accepts(TypeLogsDropped) {
			return true, 0
		}
		s.flush = false
		return false, time.Hour
	}
	if s.flush || len(s.queue) >= s.cfg.maxItems || s.queueBytes >= s.cfg.maxBytes {
		return true, 0
	}
	left := s.cfg.timeout - now.Sub(s.oldest)
	return left <= 0, left
}

// take removes a batch of at most maxItems events and maxBytes bytes (at least one event)
// and appends the platform.logsDropped event owed to the subscriber, if any.
func (s *subscriber) take() ([][]byte, *Event) {
	n, size := 0, 0
	for n < len(s.queue) && n < s.cfg.maxItems && (n == 0 || size+len(s.queue[n]) <= s.cfg.maxBytes) {
		size += len(s.queue[n])
		n++
	}
	batch := make([][]byte, n, n+1)
	copy(batch, s.queue[:n])
	s.queue = s.queue[n:]
	s.queueBytes -= size
	s.oldest = time.Now()
	if len(s.queue) == 0 {
		s.queue = nil
	}
	var ev *Event
	if s.dropped[0] > 0 && s.cfg.accepts(TypeLogsDropped) {
		ev = &Event{Time: time.Now(), Type: TypeLogsDropped, Record: LogsDropped{
			Reason: logsDroppedReasonText, DroppedRecords: s.dropped[0], DroppedBytes: s.dropped[1],
		}}
		s.dropped = [2]int64{}
		batch = append(batch, ev.Encode())
	}
	return batch, ev
}

// deliver sends a batch until it is acknowledged, retrying with backoff, or the hub closes.
func (s *subscriber) deliver(batch [][]byte) error {
	backoff := retryFirst
	for {
		if err := s.h.waitResumed(); err != nil {
			return err
		}
		err := s.send(batch)
		if err == nil {
			s.mu.Lock()
			s.st.Delivered += int64(len(batch))
			s.mu.Unlock()
			return nil
		}
		if s.h.ctx.Err() != nil {
			return s.h.ctx.Err()
		}
		s.mu.Lock()
		s.st.FailedAttempts++
		s.mu.Unlock()
		select {
		case <-time.After(backoff):
		case <-s.h.ctx.Done():
			return s.h.ctx.Err()
		}
		backoff = min(2*backoff, retryMax)
	}
}

func (s *subscriber) send(batch [][]byte) error {
	cfg := s.config()
	if cfg.protocol == "TCP" {
		return s.sendTCP(cfg.addr, batch)
	}
	size := 2
	for _, ev := range batch {
		size += len(ev) + 1
	}
	body := make([]byte, 1, size)
	body[0] = '['
	for i, ev := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, ev...)
	}
	body = append(body, ']')
	req, err := http.NewRequestWithContext(s.h.ctx, http.MethodPost, cfg.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the delivery to %s: %w", cfg.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("delivering to %s: %w", cfg.url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("delivering to %s: HTTP %d", cfg.url, resp.StatusCode)
	}
	return nil
}

// sendTCP writes the batch as NDJSON on a kept connection, reconnecting after a failure.
// TCP has no acknowledgement: written is all the platform can know.
func (s *subscriber) sendTCP(addr string, batch [][]byte) error {
	if s.conn == nil || s.connAddress != addr {
		if s.conn != nil {
			s.conn.Close()
		}
		var d net.Dialer
		conn, err := d.DialContext(s.h.ctx, "tcp", addr)
		if err != nil {
			s.conn = nil
			return fmt.Errorf("connecting to %s: %w", addr, err)
		}
		// Closing unblocks a write to a subscriber that stopped reading.
		context.AfterFunc(s.h.ctx, func() { conn.Close() })
		s.conn, s.connAddress = conn, addr
	}
	var buf bytes.Buffer
	for _, b := range batch {
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("writing to %s: %w", addr, err)
	}
	return nil
}
