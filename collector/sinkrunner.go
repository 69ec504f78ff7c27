package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/buffer"
)

// Default sink limits, used where a sink leaves a limit at zero.
const (
	defaultMaxRecords  = 2000
	defaultMaxBytes    = 4 << 20
	defaultMaxInFlight = 2
	defaultMaxDelay    = 200 * time.Millisecond
	drainPoll          = 50 * time.Millisecond
	retryBase          = 100 * time.Millisecond
	retryMax           = 30 * time.Second
)

// sinkRunner moves one sink's cursor through the buffer.
type sinkRunner struct {
	p      *Pipeline
	sink   Sink
	name   string
	bit    uint64
	reader *buffer.Reader
	limits Limits
	cost   func(*Record) int
	log    *slog.Logger

	dec      frameDecoder
	routes   map[*Source]routeCache
	sem      chan struct{}
	tracker  ackTracker
	inFlight sync.WaitGroup
	seq      uint64

	dlq         *deadLetter
	freeRecords chan []Record  // record slices of acknowledged frames
	freeBatches chan []*Record // record pointer slices of finished batches

	sent, retried, failed, dead prometheus.Counter
	duration                    prometheus.Observer
}

type routeCache struct {
	version uint32
	ok      bool
}

func newSinkRunner(p *Pipeline, s Sink, idx int) (*sinkRunner, error) {
	rd, err := p.buf.Reader(s.Name())
	if err != nil {
		return nil, fmt.Errorf("sink %s: open buffer cursor: %w", s.Name(), err)
	}
	l := s.Limits()
	if l.MaxRecords <= 0 {
		l.MaxRecords = defaultMaxRecords
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = defaultMaxInFlight
	}
	if l.MaxDelay <= 0 {
		l.MaxDelay = defaultMaxDelay
	}
	cost := l.RecordCost
	if cost == nil {
		cost = EnvelopeCost
	}
	m := p.metrics
	r := &sinkRunner{
		p: p, sink: s, name: s.Name(), bit: 1 << idx, reader: rd, limits: l, cost: cost,
		log:      p.log.With("sink", s.Name()),
		routes:   make(map[*Source]routeCache),
		sem:      make(chan struct{}, l.MaxInFlight),
		dec:      frameDecoder{sink: s.Name()},
		dlq:      newDeadLetter(p.dataDir, s.Name(), p.log),
		sent:     m.SinkRecords.WithLabelValues(s.Name(), ResultSent),
		retried:  m.SinkRecords.WithLabelValues(s.Name(), ResultRetried),
		failed:   m.SinkRecords.WithLabelValues(s.Name(), ResultFailed),
		dead:     m.SinkRecords.WithLabelValues(s.Name(), ResultDeadLetter),
		duration: m.SinkRequestDuration.WithLabelValues(s.Name()),
	}
	r.tracker.reader = rd
	r.freeRecords = make(chan []Record, recycledFrames)
	r.freeBatches = make(chan []*Record, l.MaxInFlight+1)
	r.tracker.done = func(f *trackedFrame) {
		p.buf.Recycle(f.data)
		if f.records != nil {
			select {
			case r.freeRecords <- f.records[:0]:
			default:
			}
		}
		f.data, f.records = nil, nil
	}
	return r, nil
}

// recycledFrames bounds the record slices a runner keeps for reuse.
const recycledFrames = 6

// takeBatch returns an empty slice for a new batch's records, reusing a finished batch's.
func (r *sinkRunner) takeBatch() []*Record {
	select {
	case recs := <-r.freeBatches:
		return recs
	default:
		return make([]*Record, 0, min(r.limits.MaxRecords, 4096))
	}
}

// takeRecords returns an empty record slice for the next frame, reusing one whose frame was
// acknowledged: a frame holds thousands of records, too many to allocate afresh each time.
func (r *sinkRunner) takeRecords() []Record {
	select {
	case recs := <-r.freeRecords:
		return recs
	default:
		return nil
	}
}

// pendingBatch is a batch being filled, with the frames its records come from.
type pendingBatch struct {
	records []*Record
	bytes   int
	frames  []*trackedFrame
	started time.Time
}

func (b *pendingBatch) add(r *Record, cost int, f *trackedFrame, t *ackTracker) {
	if len(b.frames) == 0 || b.frames[len(b.frames)-1] != f {
		b.frames = append(b.frames, f)
		t.addBatch(f)
	}
	b.records = append(b.records, r)
	b.bytes += cost
}

// run reads frames and dispatches batches until ctx ends, or until drain is closed and the
// buffer has nothing more for this sink.
func (r *sinkRunner) run(ctx context.Context, drain <-chan struct{}) {
	var (
		batch    *pendingBatch
		frame    decodedFrame
		draining bool
	)
	for {
		if !draining {
			select {
			case <-drain:
				draining = true
			default:
			}
		}
		var wait time.Duration
		switch {
		case batch != nil:
			wait = time.Until(batch.started.Add(r.limits.MaxDelay))
		case draining:
			wait = drainPoll
		}
		f, err := r.next(ctx, wait, drain)
		if err != nil {
			if ctx.Err() != nil {
				r.inFlight.Wait()
				return
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errDrain) {
				if batch != nil {
					r.dispatch(ctx, batch)
					batch = nil
					continue
				}
				if draining && errors.Is(err, context.DeadlineExceeded) {
					r.inFlight.Wait()
					return
				}
				continue
			}
			if errors.Is(err, buffer.ErrClosed) {
				r.inFlight.Wait()
				return
			}
			r.log.Error("read buffer", "err", err)
			if !sleepCtx(ctx, time.Second) {
				r.inFlight.Wait()
				return
			}
			continue
		}
		tf := r.tracker.add(f.End)
		tf.data = f.Data
		frame.Records = r.takeRecords()
		if err := r.dec.decode(f.Data, &frame); err != nil {
			r.log.Error("undecodable frame skipped", "segment", f.Pos.Segment, "offset", f.Pos.Offset, "err", err)
			r.failed.Add(float64(f.Count))
		} else {
			for i := range frame.Records {
				rec := &frame.Records[i]
				if !frame.Routed && !r.routed(rec.Source) {
					continue
				}
				cost := r.cost(rec)
				if batch != nil && (len(batch.records) >= r.limits.MaxRecords || batch.bytes+cost > r.limits.MaxBytes) {
					r.dispatch(ctx, batch)
					batch = nil
				}
				if batch == nil {
					batch = &pendingBatch{started: time.Now(), records: r.takeBatch()}
				}
				batch.add(rec, cost, tf, &r.tracker)
			}
		}
		// The records now belong to the batches until the frame is acknowledged.
		tf.records = frame.Records
		frame.Records = nil
		r.tracker.seal(tf)
	}
}

var errDrain = errors.New("drain requested")

// next returns the next frame. With wait > 0 it gives up after wait (DeadlineExceeded); with
// wait == 0 it blocks until a frame arrives or drain is closed (errDrain).
func (r *sinkRunner) next(ctx context.Context, wait time.Duration, drain <-chan struct{}) (buffer.Frame, error) {
	if wait < 0 {
		return buffer.Frame{}, context.DeadlineExceeded
	}
	nctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if wait > 0 {
		t := time.AfterFunc(wait, func() { cancel(context.DeadlineExceeded) })
		defer t.Stop()
	} else {
		go func() {
			select {
			case <-drain:
				cancel(errDrain)
			case <-nctx.Done():
			}
		}()
	}
	f, err := r.reader.Next(nctx)
	if err != nil && ctx.Err() == nil && nctx.Err() != nil {
		return f, context.Cause(nctx)
	}
	return f, err
}

func (r *sinkRunner) routed(s *Source) bool {
	v := s.view()
	if c, ok := r.routes[s]; ok && c.version == v.version {
		return c.ok
	}
	if len(r.routes) > maxCachedSources {
		clear(r.routes)
	}
	ok := r.p.router.Route(s)&r.bit != 0
	r.routes[s] = routeCache{version: v.version, ok: ok}
	return ok
}

// dispatch sends b in the background once an in-flight slot is free.
func (r *sinkRunner) dispatch(ctx context.Context, b *pendingBatch) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	r.seq++
	sb := &SinkBatch{Records: b.records, Seq: r.seq}
	r.inFlight.Add(1)
	go func() {
		defer r.inFlight.Done()
		defer func() { <-r.sem }()
		if r.deliver(ctx, sb) {
			for _, f := range b.frames {
				r.tracker.batchDone(f)
			}
		}
		select {
		case r.freeBatches <- b.records[:0]:
		default:
		}
	}()
}

// deliver sends until the batch is acknowledged, dead-lettered, or ctx ends (false: the
// batch stays in the buffer for the next start).
func (r *sinkRunner) deliver(ctx context.Context, b *SinkBatch) bool {
	n := float64(len(b.Records))
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := r.sink.Send(ctx, b)
		r.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			r.sent.Add(n)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var re *RecordErrors
		switch {
		case errors.As(err, &re):
			r.deadLetterRecords(b, re)
			r.sent.Add(n - float64(len(re.Failed)))
			return true
		case IsPermanent(err):
			r.log.Error("batch failed permanently; dead-lettered", "batch", b.Seq, "records", len(b.Records), "err", err)
			r.failed.Add(n)
			r.dlq.write(b.Records, err)
			r.dead.Add(n)
			return true
		}
		r.retried.Add(n)
		d := backoff(attempt)
		r.log.Warn("batch send failed; retrying", "batch", b.Seq, "records", len(b.Records), "attempt", attempt+1, "in", d, "err", err)
		if !sleepCtx(ctx, d) {
			return false
		}
	}
}

func (r *sinkRunner) deadLetterRecords(b *SinkBatch, re *RecordErrors) {
	recs := make([]*Record, 0, len(re.Failed))
	for _, f := range re.Failed {
		if f.Index >= 0 && f.Index < len(b.Records) {
			recs = append(recs, b.Records[f.Index])
		}
	}
	r.log.Error("records failed permanently; dead-lettered", "batch", b.Seq, "records", len(recs), "err", re)
	r.failed.Add(float64(len(recs)))
	r.dlq.write(recs, re)
	r.dead.Add(float64(len(recs)))
}

func (r *sinkRunner) close(ctx context.Context) error {
	err := r.sink.Close(ctx)
	if dErr := r.dlq.close(); dErr != nil {
		err = errors.Join(err, dErr)
	}
	if err != nil {
		return fmt.Errorf("sink %s: close: %w", r.name, err)
	}
	return nil
}

// backoff is exponential with full jitter.
func backoff(attempt int) time.Duration {
	d := retryBase << min(attempt, 16)
	if d > retryMax || d <= 0 {
		d = retryMax
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
