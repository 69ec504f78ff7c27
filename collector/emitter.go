package collector

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/buffer"
)

// PodMetrics is the per-pod log series store (exporter.PodLogs). The pipeline counts every
// emitted record in the series of its source's pod, so every input gets per-pod metrics.
// Acquire returns nil (an untyped nil) when the store refuses a new series.
type PodMetrics interface {
	Acquire(namespace, pod, container, stream string) PodSeries
	Release(PodSeries)
}

// PodSeries is one pod/container/stream's counters.
type PodSeries interface {
	Add(lines, bytes uint64)
	AddDropped(reason string, n uint64)
}

// sourceStats is the pipeline's per-source state, attached to the Source on its first Emit.
type sourceStats struct {
	mu           sync.Mutex
	kubeVersion  uint32
	route        [StreamApp + 1]uint64    // per stream; RouteDrop: a route drops them
	hasPod       bool                     // the metadata names a pod, and pod metrics are on
	series       [StreamApp + 1]PodSeries // acquired with each stream's first record
	refusedUntil int64                    // unix nanos; the exporter's budget refused a series
	released     bool
}

// inputEmitter is the Emitter of one input.
type inputEmitter struct {
	p       *Pipeline
	input   string
	records prometheus.Counter
	bytes   prometheus.Counter
	state   map[string][]byte
}

var encoderPool = sync.Pool{New: func() any { return new(frameEncoder) }}

func (e *inputEmitter) State() map[string][]byte {
	out := make(map[string][]byte, len(e.state))
	for k, v := range e.state {
		out[k] = v
	}
	return out
}

func (e *inputEmitter) Emit(ctx context.Context, b *Batch) (Durable, error) {
	if len(b.Records) == 0 && len(b.State) == 0 {
		return durable{}, nil
	}
	enc := encoderPool.Get().(*frameEncoder)
	defer encoderPool.Put(enc)
	routed, size := e.account(b, enc)
	payload := enc.encodeBatch(e.input, e.p.router.Sinks(), b)
	t, err := e.p.append(ctx, e.input, payload, routed, b.State)
	if err != nil {
		return nil, err
	}
	e.records.Add(float64(routed))
	e.bytes.Add(float64(size))
	return durable{buf: e.p.buf, t: t}, nil
}

// account counts records in their pod series and fills enc.masks with each record's route
// mask (0: no sink takes it); it returns how many records are routed to at least one sink, and
// their message bytes. Consecutive records of one source and stream are counted with one
// atomic add.
func (e *inputEmitter) account(b *Batch, enc *frameEncoder) (routed int, size uint64) {
	var (
		cur          PodSeries
		lines, bytes uint64
		dropped      int
	)
	flush := func() {
		if cur != nil && lines > 0 {
			cur.Add(lines, bytes)
		}
		lines, bytes = 0, 0
	}
	var lastSrc *Source
	var lastStream Stream
	var st *sourceStats
	enc.masks = slices.Grow(enc.masks[:0], len(b.Records))[:len(b.Records)]
	for i := range b.Records {
		r := &b.Records[i]
		if r.Source != lastSrc || r.Stream != lastStream {
			flush()
			lastSrc, lastStream = r.Source, r.Stream
			st = e.p.stats(r.Source)
			cur = nil
			if st != nil && int(r.Stream) < len(st.route) && st.route[r.Stream] != 0 {
				cur = e.p.series(r.Source, st, r.Stream)
			}
		}
		mask := allSinks
		if st != nil && int(r.Stream) < len(st.route) {
			mask = st.route[r.Stream]
		}
		if mask == RouteDrop {
			mask = 0
			dropped++
			if cur != nil {
				cur.AddDropped("route", 1)
			}
		}
		enc.masks[i] = mask
		if mask == 0 {
			continue
		}
		routed++
		lines++
		bytes += uint64(len(r.Message))
		size += uint64(len(r.Message))
	}
	flush()
	if dropped > 0 {
		e.p.metrics.RouteDropped.WithLabelValues(e.input).Add(float64(dropped))
	}
	if n := len(b.Records) - routed - dropped; n > 0 {
		e.p.metrics.InputErrors.WithLabelValues(e.input, "unrouted").Add(float64(n))
	}
	return routed, size
}

func (e *inputEmitter) Dropped(s *Source, st Stream, reason string, n int) {
	if n <= 0 {
		return
	}
	e.p.metrics.InputErrors.WithLabelValues(e.input, reason).Add(float64(n))
	if ss := e.p.stats(s); ss != nil {
		if ser := e.p.series(s, ss, st); ser != nil {
			ser.AddDropped(reason, uint64(n))
		}
	}
}

func (e *inputEmitter) Altered(s *Source, st Stream, reason string, n int) {
	if n > 0 {
		e.p.metrics.InputErrors.WithLabelValues(e.input, reason).Add(float64(n))
	}
}

func (e *inputEmitter) Release(s *Source) {
	if s == nil {
		return
	}
	ss := s.stats.Load()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.released = true
	for i, ser := range ss.series {
		if ser != nil && e.p.pods != nil {
			e.p.pods.Release(ser)
		}
		ss.series[i] = nil
	}
}

// durable waits for a buffer ticket.
type durable struct {
	buf *buffer.Buffer
	t   buffer.Ticket
}

func (d durable) Wait(ctx context.Context) error {
	if d.buf == nil {
		return nil
	}
	return d.buf.WaitDurable(ctx, d.t)
}
