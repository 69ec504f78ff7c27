package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/buffer"
)

// Pipeline connects inputs to the disk buffer and the buffer to the sinks.
//
// Inputs emit batches; each batch becomes one buffer frame holding its records and the input
// positions they reached. Each sink reads the buffer through its own cursor, and the cursor
// moves only past batches the destination acknowledged: at-least-once, end to end.
type Pipeline struct {
	buf     *buffer.Buffer
	router  *Router
	metrics *Metrics
	pods    PodMetrics
	log     *slog.Logger
	dataDir string

	// mu serializes appends with the state merge, so the checkpoint written when the buffer
	// rolls a segment always describes exactly the frames before it.
	mu         sync.Mutex
	state      map[string]map[string][]byte
	lastTicket buffer.Ticket
	ckpt       []byte

	runners []*sinkRunner
	wg      sync.WaitGroup
	drain   chan struct{}
	cancel  context.CancelFunc
}

// PipelineOptions are what NewPipeline needs.
type PipelineOptions struct {
	DataDir string
	Buffer  buffer.Options // Checkpoint is set by the pipeline
	Routes  []RouteConfig
	Sinks   []Sink
	Metrics *Metrics
	Pods    PodMetrics // may be nil
	Logger  *slog.Logger
}

// NewPipeline opens the buffer under DataDir, recovers the input positions it holds, and
// prepares one reader per sink. Consumers of the buffer that are no longer configured are
// removed, so they do not pin segments forever.
func NewPipeline(opts PipelineOptions) (*Pipeline, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	names := make([]string, len(opts.Sinks))
	for i, s := range opts.Sinks {
		names[i] = s.Name()
	}
	router, err := NewRouter(opts.Routes, names)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		router:  router,
		metrics: opts.Metrics,
		pods:    opts.Pods,
		log:     opts.Logger,
		dataDir: opts.DataDir,
		state:   make(map[string]map[string][]byte),
		drain:   make(chan struct{}),
	}
	bo := opts.Buffer
	bo.Checkpoint = p.checkpoint
	if bo.Logger == nil {
		bo.Logger = opts.Logger
	}
	buf, err := buffer.Open(filepath.Join(opts.DataDir, "buffer"), bo)
	if err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	p.buf = buf
	if err := p.recover(); err != nil {
		buf.Close()
		return nil, err
	}
	configured := make(map[string]bool)
	for i, s := range opts.Sinks {
		configured[s.Name()] = true
		r, err := newSinkRunner(p, s, i)
		if err != nil {
			buf.Close()
			return nil, err
		}
		p.runners = append(p.runners, r)
	}
	for _, name := range buf.Readers() {
		if !configured[name] {
			// Parked, not deleted: it holds no segment any more, and the sink configured
			// again resumes at its cursor while those frames are still retained.
			p.log.Warn("parking the buffer cursor of a sink no longer configured", "sink", name)
			if err := buf.ParkReader(name); err != nil {
				p.log.Error("park cursor", "sink", name, "err", err)
			}
		}
	}
	return p, nil
}

// recover folds every frame from the newest checkpoint on into the input state.
func (p *Pipeline) recover() error {
	dec := frameDecoder{stateOnly: true}
	var f decodedFrame
	bad := 0
	err := p.buf.Recover(func(kind buffer.Kind, payload []byte) error {
		if err := dec.decode(payload, &f); err != nil {
			bad++
			return nil
		}
		if kind == buffer.KindCheckpoint {
			clear(p.state)
		}
		for _, s := range f.State {
			p.mergeState(s.Input, s.Key, s.Value)
		}
		return nil
	})
	if bad > 0 {
		p.log.Warn("frames with undecodable state skipped during recovery", "frames", bad)
	}
	if err != nil {
		return fmt.Errorf("recover input positions: %w", err)
	}
	return nil
}

func (p *Pipeline) mergeState(input, key string, value []byte) {
	m := p.state[input]
	if value == nil {
		delete(m, key)
		return
	}
	if m == nil {
		m = make(map[string][]byte)
		p.state[input] = m
	}
	m[key] = value
}

// checkpoint is called by the buffer inside Append (with p.mu held by the appender) or Open.
func (p *Pipeline) checkpoint() []byte {
	p.ckpt = encodeCheckpoint(p.ckpt[:0], p.state)
	return p.ckpt
}

// append writes one frame and folds its state in, under mu (see Pipeline.mu).
func (p *Pipeline) append(ctx context.Context, input string, payload []byte, count int, state []StateEntry) (buffer.Ticket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, err := p.buf.Append(ctx, payload, count)
	if err != nil {
		return t, fmt.Errorf("append to buffer: %w", err)
	}
	for _, s := range state {
		var v []byte
		if s.Value != nil {
			v = append([]byte{}, s.Value...)
		}
		p.mergeState(input, s.Key, v)
	}
	p.lastTicket = t
	return t, nil
}

// Emitter returns the emitter of the named input, with the positions it had reached.
func (p *Pipeline) Emitter(input string) Emitter {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := make(map[string][]byte, len(p.state[input]))
	for k, v := range p.state[input] {
		st[k] = v
	}
	return &inputEmitter{p: p, input: input, records: p.metrics.InputRecords.WithLabelValues(input),
		bytes: p.metrics.InputBytes.WithLabelValues(input), state: st}
}

// stats returns the per-source state, creating it on first use and refreshing the route when
// the source's metadata changed. Pod series are not acquired here: see series.
func (p *Pipeline) stats(s *Source) *sourceStats {
	if s == nil {
		return nil
	}
	ss := s.stats.Load()
	v := s.view()
	if ss != nil && ss.kubeVersion == v.version {
		return ss
	}
	if ss == nil {
		s.stats.CompareAndSwap(nil, &sourceStats{})
		ss = s.stats.Load()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.kubeVersion == v.version && ss.kubeVersion != 0 {
		return ss
	}
	ss.route = p.router.RouteStreams(s)
	ss.hasPod = p.pods != nil && v.kube != nil && v.kube.Pod != ""
	ss.kubeVersion = v.version
	return ss
}

// podSeriesRetry is how long a source whose pod series the exporter refused (its series
// budget is full) waits before asking again.
const podSeriesRetry = 10 * time.Second

// series returns the pod series of one stream of the source, acquiring it with the stream's
// first record: a stream that never logs never gets a series (a tail source never gets an app
// one). nil without pod metadata, after the source was released, or while the exporter's
// budget refuses it. Called by the goroutine that emits the source's records.
func (p *Pipeline) series(s *Source, ss *sourceStats, st Stream) PodSeries {
	if !ss.hasPod || st == StreamUnknown || int(st) >= len(ss.series) {
		return nil
	}
	if ser := ss.series[st]; ser != nil {
		return ser
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.released || ss.series[st] != nil {
		return ss.series[st]
	}
	now := time.Now().UnixNano()
	if now < ss.refusedUntil {
		return nil
	}
	k := s.view().kube
	if k == nil {
		return nil
	}
	ser := p.pods.Acquire(k.Namespace, k.Pod, k.Container, st.String())
	if ser == nil {
		ss.refusedUntil = now + int64(podSeriesRetry)
		return nil
	}
	ss.series[st] = ser
	return ser
}

// Start runs one reader per sink until Stop.
func (p *Pipeline) Start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	for _, r := range p.runners {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			r.run(ctx, p.drain)
		}()
	}
}

// Stop drains: every sink sends what the buffer holds (inputs must be stopped first) until
// ctx ends; what is still unsent stays in the buffer for the next start. Then cursors are
// persisted and the buffer closed.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.mu.Lock()
	last := p.lastTicket
	p.mu.Unlock()
	if err := p.buf.WaitDurable(ctx, last); err != nil && !errors.Is(err, buffer.ErrClosed) {
		p.log.Warn("final buffer sync", "err", err)
	}
	close(p.drain)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.log.Warn("shutdown timeout: unsent batches stay in the buffer for the next start")
	}
	if p.cancel != nil {
		p.cancel()
	}
	<-done
	var errs []error
	for _, r := range p.runners {
		if err := r.close(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.buf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close buffer: %w", err))
	}
	return errors.Join(errs...)
}

// Buffer exposes the buffer for metrics and inspection.
func (p *Pipeline) Buffer() *buffer.Buffer { return p.buf }
