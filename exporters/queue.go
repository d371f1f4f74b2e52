package exporters

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
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

// Add queues requests for every exporter. When an exporter's queue is over its bound, its
// oldest requests are dropped and counted.
func (q *Queue) Add(reqs ...Request) {
	defer q.logDropped()
	for _, r := range reqs {
		if r.Items() == 0 {
			continue
		}
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
	var errs []error
	for _, o := range q.outs {
		for len(o.pending) > 0 {
			head := o.pending[0]
			res := o.exp.Export(ctx, head.req)
			if res.Retryable {
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
