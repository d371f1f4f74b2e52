package exporters

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// Outcomes of items, as counted by Queue.
const (
	OutcomeExported  = "exported"
	OutcomeRejected  = "rejected"
	OutcomeQueueFull = "queue_full"
	OutcomeShutdown  = "shutdown"
)

// Count is how many items of a signal met an outcome at an exporter.
type Count struct {
	Exporter, Signal, Outcome string
	Items                     uint64
}

// Queue holds, for each exporter, the requests it has yet to deliver, bounded in bytes,
// and counts what became of every item. A request one exporter delivered is not sent to it
// again when another fails. It is used from one goroutine.
type Queue struct {
	log      *slog.Logger
	maxBytes int
	outs     []*outbox
	counts   map[Count]uint64
	// dropped holds the drops not yet logged: each operation logs one line per exporter,
	// signal and reason, however many requests it dropped.
	dropped map[Count]uint64
	// retryAfter is the longest wait a destination asked for during the last Flush.
	retryAfter time.Duration
}

type outbox struct {
	exp     Exporter
	pending []queued
	bytes   int
}

type queued struct {
	req  Request
	size int
}

// NewQueue returns a queue in front of exps, holding at most maxBytes of protobuf per
// exporter.
func NewQueue(exps []Exporter, maxBytes int, log *slog.Logger) *Queue {
	q := &Queue{log: log, maxBytes: maxBytes, counts: map[Count]uint64{}, dropped: map[Count]uint64{}}
	for _, e := range exps {
		q.outs = append(q.outs, &outbox{exp: e})
	}
	return q
}

// Add queues requests for every exporter; they are the queue's from then on. A request
// over maxRequestBytes is cut into pieces within it, since a destination refuses an
// oversized request whole and for good. When an exporter's queue is over its bound, its
// oldest requests are dropped and counted.
func (q *Queue) Add(reqs ...Request) {
	defer q.logDropped()
	for _, whole := range reqs {
		if whole.Items() == 0 {
			continue
		}
		for _, r := range whole.split(maxRequestBytes) {
			size := r.Size()
			for _, o := range q.outs {
				o.pending = append(o.pending, queued{req: r, size: size})
				o.bytes += size
				for o.bytes > q.maxBytes && len(o.pending) > 1 {
					q.count(o, o.pending[0].req, OutcomeQueueFull, o.pending[0].req.Items())
					o.bytes -= o.pending[0].size
					o.pending = slices.Delete(o.pending, 0, 1)
				}
			}
		}
	}
}

// Pending reports whether any exporter has requests left.
func (q *Queue) Pending() bool {
	for _, o := range q.outs {
		if len(o.pending) > 0 {
			return true
		}
	}
	return false
}

// Flush sends what is queued, oldest first, until done or ctx ends. An exporter whose
// destination is unavailable keeps its requests for the next flush; the others carry on.
// The returned error joins the reasons items were not delivered.
func (q *Queue) Flush(ctx context.Context) error {
	defer q.logDropped()
	q.retryAfter = 0
	var errs []error
	for _, o := range q.outs {
		for len(o.pending) > 0 {
			o.coalesce()
			head := o.pending[0]
			res := o.exp.Export(ctx, head.req)
			if res.Retryable {
				q.retryAfter = max(q.retryAfter, res.RetryAfter)
				errs = append(errs, res.Err)
				break
			}
			q.count(o, head.req, OutcomeExported, res.Accepted)
			q.count(o, head.req, OutcomeRejected, res.Rejected)
			if res.Err != nil {
				errs = append(errs, res.Err)
			}
			o.bytes -= head.size
			o.pending = slices.Delete(o.pending, 0, 1)
		}
	}
	return errors.Join(errs...)
}

// coalesce merges the head request with the later ones of its signal, in order, up to
// maxRequestBytes, so that what piled up while a destination was away or slow goes in few
// round trips: one per signal rather than one per flush, which a slow backend could not
// take within the shutdown deadline. The merged request replaces its parts, so a retry
// sends the same request again.
func (o *outbox) coalesce() {
	head := o.pending[0]
	parts := []Request{head.req}
	taken := make([]bool, len(o.pending))
	size := head.size
	for i := 1; i < len(o.pending); i++ {
		p := o.pending[i]
		if p.req.Signal() != head.req.Signal() {
			continue
		}
		if size+p.size > maxRequestBytes {
			break
		}
		parts = append(parts, p.req)
		taken[i] = true
		size += p.size
	}
	if len(parts) == 1 {
		return
	}
	merged := merge(parts)
	mq := queued{req: merged, size: merged.Size()}
	kept := make([]queued, 0, len(o.pending)-len(parts)+1)
	kept = append(kept, mq)
	for i, p := range o.pending[1:] {
		if !taken[i+1] {
			kept = append(kept, p)
		}
	}
	o.bytes += mq.size - size
	o.pending = kept
}

// RetryAfter is the longest a destination asked, during the last Flush, to be left alone
// for; 0 when none did.
func (q *Queue) RetryAfter() time.Duration { return q.retryAfter }

// DropPending counts everything still queued as dropped with outcome, at shutdown, and
// empties the queue.
func (q *Queue) DropPending(outcome string) {
	defer q.logDropped()
	for _, o := range q.outs {
		for _, p := range o.pending {
			q.count(o, p.req, outcome, p.req.Items())
		}
		o.pending, o.bytes = nil, 0
	}
}

// Counts returns the counts, in a stable order.
func (q *Queue) Counts() []Count {
	out := make([]Count, 0, len(q.counts))
	for k, n := range q.counts {
		k.Items = n
		out = append(out, k)
	}
	slices.SortFunc(out, compareCounts)
	return out
}

func (q *Queue) count(o *outbox, r Request, outcome string, n int) {
	if n <= 0 {
		return
	}
	k := Count{Exporter: o.exp.Name(), Signal: r.Signal().String(), Outcome: outcome}
	q.counts[k] += uint64(n)
	if outcome != OutcomeExported {
		q.dropped[k] += uint64(n)
	}
}

// logDropped logs the drops counted since it last ran, in a stable order.
func (q *Queue) logDropped() {
	for _, k := range slices.SortedFunc(maps.Keys(q.dropped), compareCounts) {
		if q.log != nil {
			q.log.Warn("telemetry dropped", "exporter", k.Exporter, "signal", k.Signal, "items", q.dropped[k], "reason", k.Outcome)
		}
		delete(q.dropped, k)
	}
}

func compareCounts(a, b Count) int {
	return cmp.Or(strings.Compare(a.Exporter, b.Exporter), strings.Compare(a.Signal, b.Signal), strings.Compare(a.Outcome, b.Outcome))
}

// Close closes every exporter.
func (q *Queue) Close(ctx context.Context) error {
	var errs []error
	for _, o := range q.outs {
		errs = append(errs, o.exp.Close(ctx))
	}
	return errors.Join(errs...)
}
