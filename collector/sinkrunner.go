package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
	"unicode/utf8"

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
	keyer  Keyer // nil: one batch at a time, key ""
	name   string
	bit    uint64
	reader *buffer.Reader
	limits Limits
	cost   func(*Record) int
	size   func(*Record) int // RecordBytes, for MaxRecordBytes
	log    *slog.Logger
	warn   *WarnLimiter

	dec      frameDecoder
	routes   map[*Source]routeCache
	sem      chan struct{}            // batches being sent (MaxInFlight)
	queued   chan struct{}            // batches dispatched and not finished (2 x MaxInFlight)
	lastDone map[string]chan struct{} // OrderedKeys: closed when a key's last batch is done
	tracker  ackTracker
	inFlight sync.WaitGroup
	seq      uint64

	// Partial batches by destination key, and in the order they were opened (oldest first;
	// dispatched ones are skipped lazily).
	open      map[string]*pendingBatch
	order     []*pendingBatch
	openBytes int // cost of the records in open batches
	keyBuf    []byte
	// readPos is the end of the last frame read (runUntil stops there).
	readPos buffer.Position
	// take, when set, decides per frame whether its records are sent (a replay's filter);
	// a frame it refuses is acknowledged untouched.
	take func(state []stateItem, recs []Record) bool

	dlq         *deadLetter
	freeRecords chan []Record  // record slices of acknowledged frames
	freeBatches chan []*Record // record pointer slices of finished batches
	memPools    memPools       // chunks of keyed batches' record copies

	sent, retried, failed, dead prometheus.Counter
	oversize                    [OversizeDeadLetter + 1]prometheus.Counter
	duration                    prometheus.Observer
}

type routeCache struct {
	version uint32
	ok      bool
}

// Defaults bounding the partial batches a Keyer sink keeps open.
const (
	defaultMaxOpenKeys  = 256
	defaultMaxOpenBytes = 8 << 20
)

func newSinkRunner(p *Pipeline, s Sink, idx int) (*sinkRunner, error) {
	rd, err := p.buf.Reader(s.Name())
	if err != nil {
		return nil, fmt.Errorf("sink %s: open buffer cursor: %w", s.Name(), err)
	}
	r := newRunner(s, rd, p.metrics, p.log, newDeadLetter(p.dataDir, s.Name(), p.log, p.metrics))
	r.p = p
	r.bit = 1 << idx
	r.tracker.done = func(f *trackedFrame) {
		p.buf.Recycle(f.data)
		r.recycle(f)
	}
	return r, nil
}

// newRunner builds a runner over reader rd; the pipeline's runners and `deadletter replay`
// share it.
func newRunner(s Sink, rd *buffer.Reader, m *Metrics, log *slog.Logger, dlq *deadLetter) *sinkRunner {
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
	if l.MaxOpenKeys <= 0 {
		l.MaxOpenKeys = defaultMaxOpenKeys
	}
	if l.MaxOpenBytes <= 0 {
		l.MaxOpenBytes = max(defaultMaxOpenBytes, 2*l.MaxBytes)
	}
	cost := l.RecordCost
	if cost == nil {
		cost = EnvelopeCost
	}
	size := l.RecordBytes
	if size == nil {
		size = func(r *Record) int { return len(r.Message) + len(r.Fields) }
	}
	keyer, _ := s.(Keyer)
	logger := log.With("sink", s.Name())
	r := &sinkRunner{
		sink: s, keyer: keyer, name: s.Name(), bit: allSinks, reader: rd, limits: l, cost: cost, size: size,
		log:      logger,
		warn:     NewWarnLimiter(logger, time.Minute),
		dec:      frameDecoder{sink: s.Name()},
		routes:   make(map[*Source]routeCache),
		sem:      make(chan struct{}, l.MaxInFlight),
		queued:   make(chan struct{}, 2*l.MaxInFlight),
		lastDone: make(map[string]chan struct{}),
		open:     make(map[string]*pendingBatch),
		dlq:      dlq,
		sent:     m.SinkRecords.WithLabelValues(s.Name(), ResultSent),
		retried:  m.SinkRecords.WithLabelValues(s.Name(), ResultRetried),
		failed:   m.SinkRecords.WithLabelValues(s.Name(), ResultFailed),
		dead:     m.SinkRecords.WithLabelValues(s.Name(), ResultDeadLetter),
		duration: m.SinkRequestDuration.WithLabelValues(s.Name()),
	}
	for o := range r.oversize {
		r.oversize[o] = m.SinkOversize.WithLabelValues(s.Name(), Oversize(o).String())
	}
	r.tracker.reader = rd
	r.freeRecords = make(chan []Record, recycledFrames)
	r.freeBatches = make(chan []*Record, 2*l.MaxInFlight+1)
	r.tracker.done = r.recycle
	return r
}

// recycle keeps an acknowledged frame's record slice for the next frame.
func (r *sinkRunner) recycle(f *trackedFrame) {
	if f.records != nil {
		select {
		case r.freeRecords <- f.records[:0]:
		default:
		}
	}
	f.data, f.records = nil, nil
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

// pendingBatch is a batch being filled, with the frames its records come from. A batch with a
// destination key holds copies of its records in mem (nil: it points into the frames).
type pendingBatch struct {
	key        string
	records    []*Record
	mem        *batchMem
	bytes      int
	frames     []*trackedFrame
	deadline   time.Time // started + MaxDelay
	dispatched bool
}

func (b *pendingBatch) add(r *Record, cost int, f *trackedFrame, t *ackTracker) {
	if len(b.frames) == 0 || b.frames[len(b.frames)-1] != f {
		b.frames = append(b.frames, f)
		t.addBatch(f, b.mem == nil)
	}
	if b.mem != nil {
		r = b.mem.copy(r)
	}
	b.records = append(b.records, r)
	b.bytes += cost
}

// run reads frames and dispatches batches until ctx ends, or until drain is closed and the
// buffer has nothing more for this sink (or, with stop set, the reader reached stop).
func (r *sinkRunner) run(ctx context.Context, drain <-chan struct{}) {
	r.runUntil(ctx, drain, nil)
}

func (r *sinkRunner) runUntil(ctx context.Context, drain <-chan struct{}, stop *buffer.Position) {
	var (
		frame    decodedFrame
		draining bool
	)
	defer r.inFlight.Wait()
	// The drain channel as a context, so next can watch it without a goroutine per frame.
	drainCtx, drained := context.WithCancel(context.Background())
	defer drained()
	go func() {
		select {
		case <-drain:
			drained()
		case <-drainCtx.Done():
		}
	}()
	for {
		if !draining {
			select {
			case <-drain:
				draining = true
			default:
			}
		}
		var wait time.Duration
		switch oldest := r.oldest(); {
		case oldest != nil:
			// next blocks without a timer on 0: a deadline reached is -1, "now".
			if wait = time.Until(oldest.deadline); wait <= 0 {
				wait = -1
			}
		case draining:
			wait = drainPoll
		}
		if stop != nil && !r.readPos.Less(*stop) {
			r.flushOpen(ctx, time.Time{})
			return
		}
		var watch context.Context
		if !draining {
			watch = drainCtx
		}
		f, err := r.next(ctx, wait, watch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errDrain) {
				if r.oldest() != nil {
					cutoff := time.Now()
					if errors.Is(err, errDrain) || draining {
						cutoff = time.Time{} // draining: send every partial batch now
					}
					r.flushOpen(ctx, cutoff)
					continue
				}
				if draining && errors.Is(err, context.DeadlineExceeded) {
					return
				}
				continue
			}
			if errors.Is(err, buffer.ErrClosed) {
				return
			}
			r.log.Error("read buffer", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		r.readPos = f.End
		tf := r.tracker.add(f.End)
		tf.data = f.Data
		frame.Records = r.takeRecords()
		if err := r.dec.decode(f.Data, &frame); err != nil {
			r.warn.Warn("undecodable", "undecodable frame skipped", "segment", f.Pos.Segment, "offset", f.Pos.Offset, "err", err)
			r.failed.Add(float64(f.Count))
		} else if r.take == nil || r.take(frame.State, frame.Records) {
			for i := range frame.Records {
				rec := &frame.Records[i]
				if !frame.Routed && !r.routed(rec.Source) {
					continue
				}
				r.add(ctx, rec, tf)
			}
		}
		// The records now belong to the batches until the frame is acknowledged.
		tf.records = frame.Records
		frame.Records = nil
		r.tracker.seal(tf)
	}
}

// add puts rec in the open batch of its key, after enforcing MaxRecordBytes.
func (r *sinkRunner) add(ctx context.Context, rec *Record, tf *trackedFrame) {
	if max := r.limits.MaxRecordBytes; max > 0 && r.size(rec) > max {
		r.addOversized(ctx, rec, tf)
		return
	}
	r.addFitting(ctx, rec, tf)
}

// maxParts bounds the parts of one split record (the part number lives in 16 bits of the ID);
// what is left after the last part is cut and flagged.
const maxParts = 1 << 16

// addOversized applies the Oversize policy to a record over MaxRecordBytes. Parts and the
// truncated head borrow the record's message: nothing is copied.
func (r *sinkRunner) addOversized(ctx context.Context, rec *Record, tf *trackedFrame) {
	limit, policy := r.limits.MaxRecordBytes, r.limits.Oversize
	r.oversize[policy].Inc()
	if policy == OversizeDeadLetter {
		r.deadLetterOversize(ctx, rec, tf, fmt.Errorf("record of %d bytes is over the limit of %d", r.size(rec), limit))
		return
	}
	// Cut every part before sending any, so each carries the count (Cloud Logging's
	// split.totalSplits, Pub/Sub's parts attribute) and a record that cannot be cut is
	// dead-lettered whole. Truncation is the first part alone.
	rest := rec.Message
	var parts []Record
	for first := true; first || len(rest) > 0; first = false {
		part := *rec
		part.Fields = nil
		if policy == OversizeSplit {
			part.ID = rec.ID.Part(len(parts))
			part.Flags |= FlagPart
		}
		n := r.fit(&part, rest, limit)
		if n < 0 {
			r.deadLetterOversize(ctx, rec, tf, fmt.Errorf("record does not fit in %d bytes even without its message", limit))
			return
		}
		part.Message, rest = rest[:n], rest[n:]
		// Truncation, or the last part the ID can number: the rest is cut.
		if policy == OversizeTruncate || len(parts) == maxParts-1 && len(rest) > 0 {
			part.Flags |= FlagTruncated
			rest = nil
		}
		parts = append(parts, part)
	}
	if policy == OversizeSplit {
		for i := range parts {
			parts[i].Parts = uint32(len(parts))
		}
	}
	if len(parts) == 1 {
		// One part (a truncation, or a split where only the fields were too big): it
		// takes the record's place.
		*rec = parts[0]
		r.addFitting(ctx, rec, tf)
		return
	}
	for i := range parts {
		r.addFitting(ctx, &parts[i], tf)
	}
}

// fit returns how many bytes of msg, cut at a UTF-8 boundary, p can carry within limit as the
// sink measures it (p.Message is overwritten), or -1 when p cannot carry even one character.
// RecordBytes is at least the message length, so the answer is at most limit; most sinks
// measure the message plus a fixed overhead, which the first guess finds in two measurements.
func (r *sinkRunner) fit(p *Record, msg []byte, limit int) int {
	p.Message = nil
	over := r.size(p)
	if over > limit || over == limit && len(msg) > 0 {
		return -1
	}
	fits := func(n int) bool {
		p.Message = msg[:n]
		return r.size(p) <= limit
	}
	n := min(len(msg), limit-over)
	if !fits(n) {
		lo, hi := 0, n // fits(lo), !fits(hi)
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if fits(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		n = lo
	}
	if n < len(msg) && !utf8.RuneStart(msg[n]) {
		// msg[n] continues a character: leave that character out, unless it is invalid UTF-8
		// (then any cut is as good as another).
		for start := n - 1; start >= 0 && n-start < utf8.UTFMax; start-- {
			if utf8.RuneStart(msg[start]) {
				if _, size := utf8.DecodeRune(msg[start:]); size > 1 && start+size > n {
					n = start
				}
				break
			}
		}
	}
	if n == 0 && len(msg) > 0 {
		return -1
	}
	return n
}

// deadLetterOversize stores a record that cannot be sent even in parts. If it cannot be
// stored before ctx ends, its frame is held so the cursor does not pass it this run.
func (r *sinkRunner) deadLetterOversize(ctx context.Context, rec *Record, tf *trackedFrame, err error) {
	err = WithReason("oversize", err)
	r.warn.Warn("oversize", "record over the sink's size limit; dead-lettered", "reason", "oversize", "err", err)
	if !r.deadLetter(ctx, []*Record{rec}, err) {
		r.tracker.addBatch(tf, false) // never done: the frame stays in the buffer for the next start
	}
}

func (r *sinkRunner) addFitting(ctx context.Context, rec *Record, tf *trackedFrame) {
	var key []byte
	if r.keyer != nil {
		r.keyBuf = r.keyer.AppendKey(r.keyBuf[:0], rec)
		key = r.keyBuf
	}
	cost := r.cost(rec)
	b := r.open[string(key)]
	if b != nil && (len(b.records) >= r.limits.MaxRecords || b.bytes+cost > r.limits.MaxBytes) {
		r.dispatch(ctx, b)
		b = nil
	}
	if b == nil {
		if len(r.open) >= r.limits.MaxOpenKeys {
			r.dispatch(ctx, r.oldest())
		}
		b = &pendingBatch{key: string(key), deadline: time.Now().Add(r.limits.MaxDelay), records: r.takeBatch()}
		if len(key) > 0 {
			// Many keys each take a few records of every frame: holding copies frees the
			// frames once read, where pointers would pin each until its last key's batch
			// is acknowledged.
			b.mem = &batchMem{pools: &r.memPools}
		}
		r.open[b.key] = b
		r.order = append(r.order, b)
	}
	b.add(rec, cost, tf, &r.tracker)
	r.openBytes += cost
	for r.openBytes > r.limits.MaxOpenBytes {
		o := r.oldest()
		if o == nil || o == b && len(r.open) == 1 {
			break // one batch open: MaxBytes bounds it
		}
		r.dispatch(ctx, o)
	}
}

// oldest returns the open batch opened first, or nil.
func (r *sinkRunner) oldest() *pendingBatch {
	for len(r.order) > 0 && r.order[0].dispatched {
		r.order[0] = nil
		r.order = r.order[1:]
	}
	if len(r.order) == 0 {
		return nil
	}
	return r.order[0]
}

// flushOpen dispatches every open batch whose deadline is not after cutoff (a zero cutoff:
// all of them), oldest first.
func (r *sinkRunner) flushOpen(ctx context.Context, cutoff time.Time) {
	for b := r.oldest(); b != nil && (cutoff.IsZero() || !b.deadline.After(cutoff)); b = r.oldest() {
		r.dispatch(ctx, b)
		if ctx.Err() != nil {
			return
		}
	}
}

var errDrain = errors.New("drain requested")

// next returns the next frame. With wait > 0 it gives up after wait (DeadlineExceeded); with
// wait == 0 it waits for a frame. Either way it gives up when drain (nil once draining: a
// context done when the drain channel closes) is done (errDrain), so a partial batch with a
// long MaxDelay does not hold a shutdown back.
func (r *sinkRunner) next(ctx context.Context, wait time.Duration, drain context.Context) (buffer.Frame, error) {
	if wait < 0 {
		return buffer.Frame{}, context.DeadlineExceeded
	}
	nctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if wait > 0 {
		t := time.AfterFunc(wait, func() { cancel(context.DeadlineExceeded) })
		defer t.Stop()
	}
	if drain != nil {
		stop := context.AfterFunc(drain, func() { cancel(errDrain) })
		defer stop()
	}
	f, err := r.reader.Next(nctx)
	if err != nil && ctx.Err() == nil && nctx.Err() != nil {
		return f, context.Cause(nctx)
	}
	return f, err
}

func (r *sinkRunner) routed(s *Source) bool {
	if r.p == nil {
		return true // a replay: dead letters already belong to this sink
	}
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

// dispatch hands b to a sender goroutine, once it has an in-flight slot (see below): the
// reader waits while the slots are taken (backpressure).
func (r *sinkRunner) dispatch(ctx context.Context, b *pendingBatch) {
	if b.dispatched {
		return
	}
	b.dispatched = true
	r.openBytes -= b.bytes
	if r.open[b.key] == b {
		delete(r.open, b.key)
	}
	// Without OrderedKeys the in-flight slot is taken here, on the reader, so batches get their
	// slots in Seq order (a sink that writes in order, such as the file sink, relies on it:
	// the batch whose turn it is always holds a slot) and the reader waits while MaxInFlight
	// are out. With OrderedKeys a batch first waits for its key's previous one, so it takes its
	// slot in its own goroutine, and queued bounds the batches waiting.
	ordered := r.limits.OrderedKeys
	slots := r.sem
	if ordered {
		slots = r.queued
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	var prev, done chan struct{}
	if ordered {
		prev = r.lastDone[b.key]
		done = make(chan struct{})
		r.lastDone[b.key] = done
		r.pruneLastDone()
	}
	r.seq++
	sb := &SinkBatch{Records: b.records, Key: b.key, Seq: r.seq}
	r.inFlight.Add(1)
	go func() {
		defer r.inFlight.Done()
		if ordered {
			defer func() { <-r.queued }()
			defer close(done)
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case r.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		ok := r.deliver(ctx, sb)
		<-r.sem
		if ok {
			for _, f := range b.frames {
				r.tracker.batchDone(f, b.mem == nil)
			}
			if b.mem != nil {
				b.mem.release() // only once delivered: an unfinished batch's frames stay unreleased too
			}
		}
		select {
		case r.freeBatches <- b.records[:0]:
		default:
		}
	}()
}

// pruneLastDone forgets keys whose last batch finished, once the map grows past the open keys.
func (r *sinkRunner) pruneLastDone() {
	if len(r.lastDone) <= 4*r.limits.MaxOpenKeys {
		return
	}
	for k, ch := range r.lastDone {
		select {
		case <-ch:
			delete(r.lastDone, k)
		default:
		}
	}
}

// deliver sends until every record of the batch is acknowledged or dead-lettered, or ctx
// ends (false: the batch stays in the buffer for the next start). After a partial failure
// only the records the sink asked to retry are sent again.
func (r *sinkRunner) deliver(ctx context.Context, b *SinkBatch) bool {
	for attempt := 0; ; attempt++ {
		n := len(b.Records)
		start := time.Now()
		err := r.sink.Send(ctx, b)
		r.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			r.sent.Add(float64(n))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var re *RecordErrors
		switch {
		case errors.As(err, &re):
			failed, retry := sortOut(re, n)
			if !r.deadLetterRecords(ctx, b, failed) {
				return false
			}
			r.sent.Add(float64(n - len(failed) - len(retry)))
			if len(retry) == 0 {
				return true
			}
			recs := make([]*Record, len(retry))
			var after time.Duration
			for i, e := range retry {
				recs[i] = b.Records[e.Index]
				after = max(after, RetryDelay(e.Err))
			}
			// The longest RetryAfter any of them asked for holds for the retry of them all.
			err = RetryAfter(retry[0].Err, after)
			b = &SinkBatch{Records: recs, Key: b.Key, Seq: b.Seq}
		case IsPermanent(err):
			r.warn.Warn("permanent:"+ErrorReason(err), "batch failed permanently; dead-lettered",
				"batch", b.Seq, "records", n, "reason", ErrorReason(err), "err", err)
			return r.deadLetter(ctx, b.Records, err)
		}
		r.retried.Add(float64(len(b.Records)))
		d := max(backoff(attempt), RetryDelay(err))
		r.warn.Warn("retry", "batch send failed; retrying", "batch", b.Seq, "records", len(b.Records),
			"attempt", attempt+1, "in", d, "err", err)
		if !sleepCtx(ctx, d) {
			return false
		}
	}
}

// sortOut validates the indexes of a RecordErrors against a batch of n records: out of range
// and repeated indexes are ignored, and a record both failed and to retry counts as failed.
func sortOut(re *RecordErrors, n int) (failed, retry []RecordError) {
	seen := make(map[int]bool, len(re.Failed)+len(re.Retry))
	keep := func(e RecordError) bool {
		if e.Index < 0 || e.Index >= n || seen[e.Index] {
			return false
		}
		seen[e.Index] = true
		return true
	}
	for _, e := range re.Failed {
		if keep(e) {
			failed = append(failed, e)
		}
	}
	for _, e := range re.Retry {
		if keep(e) {
			retry = append(retry, e)
		}
	}
	return failed, retry
}

// deadLetterRecords stores the failed records, grouped by reason, and counts them. false: ctx
// ended before they were stored.
func (r *sinkRunner) deadLetterRecords(ctx context.Context, b *SinkBatch, failed []RecordError) bool {
	if len(failed) == 0 {
		return true
	}
	byReason := make(map[string][]RecordError)
	var order []string
	for _, f := range failed {
		reason := ErrorReason(f.Err)
		if byReason[reason] == nil {
			order = append(order, reason)
		}
		byReason[reason] = append(byReason[reason], f)
	}
	for _, reason := range order {
		list := byReason[reason]
		recs := make([]*Record, len(list))
		for i, f := range list {
			recs[i] = b.Records[f.Index]
		}
		r.warn.Warn("permanent:"+reason, "records failed permanently; dead-lettered", "batch", b.Seq,
			"records", len(recs), "reason", reason, "err", list[0].Err)
		if !r.deadLetter(ctx, recs, list[0].Err) {
			return false
		}
	}
	return true
}

// deadLetter stores recs in the dead-letter store, retrying a failed write (a full or broken
// disk) until it works or ctx ends (false: the records were not stored, and their batch must
// stay unacknowledged).
func (r *sinkRunner) deadLetter(ctx context.Context, recs []*Record, cause error) bool {
	for attempt := 0; ; attempt++ {
		err := r.dlq.write(ctx, recs, cause)
		if err == nil {
			r.failed.Add(float64(len(recs)))
			r.dead.Add(float64(len(recs)))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.warn.Warn("dlq-write", "cannot store dead letters; retrying", "records", len(recs), "err", err)
		if !sleepCtx(ctx, backoff(attempt)) {
			return false
		}
	}
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

// backoff is exponential with "equal jitter": a wait drawn uniformly from [d/2, d] where d
// doubles from retryBase per attempt up to retryMax. Half of d is kept so a throttled
// destination always gets a real pause (full jitter may retry at once), and the other half is
// random so many sinks or agents retrying together spread out.
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
