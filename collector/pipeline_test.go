package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailgate-dev/tailgate/buffer"
)

// fakeSink records what it was sent; fail decides the outcome of each Send.
type fakeSink struct {
	name   string
	limits Limits
	fail   func(b *SinkBatch, attempt int) error

	mu       sync.Mutex
	attempts map[uint64]int
	got      []string // messages of acknowledged records
	batches  []*SinkBatch
	closed   bool
}

func (s *fakeSink) Name() string   { return s.name }
func (s *fakeSink) Limits() Limits { return s.limits }

// cloneRecords deep-copies a batch's records: a sink must not keep the pipeline's past Send
// (they point into recycled frames and batch memory).
func cloneRecords(recs []*Record) []*Record {
	out := make([]*Record, len(recs))
	for i, r := range recs {
		c := *r
		c.Message, c.Tag, c.Fields = bytes.Clone(r.Message), bytes.Clone(r.Tag), bytes.Clone(r.Fields)
		out[i] = &c
	}
	return out
}

func (s *fakeSink) Send(ctx context.Context, b *SinkBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[uint64]int{}
	}
	s.attempts[b.Seq]++
	s.batches = append(s.batches, &SinkBatch{Records: cloneRecords(b.Records), Key: b.Key, Seq: b.Seq})
	var err error
	if s.fail != nil {
		err = s.fail(b, s.attempts[b.Seq])
	}
	var re *RecordErrors
	failed := map[int]bool{}
	if errors.As(err, &re) {
		for _, f := range append(append([]RecordError{}, re.Failed...), re.Retry...) {
			failed[f.Index] = true
		}
	} else if err != nil {
		return err
	}
	for i, r := range b.Records {
		if !failed[i] {
			s.got = append(s.got, string(r.Message))
		}
	}
	return err
}
func (s *fakeSink) Close(context.Context) error { s.closed = true; return nil }

func (s *fakeSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.got...)
}

func newTestPipeline(t *testing.T, dir string, sinks []Sink, routes []RouteConfig, reg prometheus.Registerer) *Pipeline {
	t.Helper()
	p, err := NewPipeline(PipelineOptions{
		DataDir: dir,
		Buffer:  buffer.Options{MaxBytes: 64 << 20, SegmentBytes: 1 << 20, Sync: 10 * time.Millisecond},
		Routes:  routes,
		Sinks:   sinks,
		Metrics: NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func emitN(t *testing.T, em Emitter, src *Source, from, n int, state string) Durable {
	t.Helper()
	b := &Batch{}
	for i := from; i < from+n; i++ {
		b.Records = append(b.Records, Record{Source: src, Time: int64(i), ID: MakeID(src.Key, uint64(i)), Stream: StreamStdout, Message: fmt.Appendf(nil, "line %d", i)})
	}
	if state != "" {
		b.State = []StateEntry{{Key: "pos", Value: []byte(state)}}
	}
	d, err := em.Emit(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPipelineDeliversAndResumes(t *testing.T) {
	dir := t.TempDir()
	sink := &fakeSink{name: "a", limits: Limits{MaxRecords: 7, MaxInFlight: 3}}
	p := newTestPipeline(t, dir, []Sink{sink}, nil, nil)
	p.Start(context.Background())
	em := p.Emitter("pods")
	src := NewSource(1, "pods", &Kube{Namespace: "ns", Pod: "p", Container: "c"})
	for i := 0; i < 10; i++ {
		d := emitN(t, em, src, i*100, 100, fmt.Sprint(i))
		if i == 9 {
			if err := d.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "1000 records", func() bool { return len(sink.messages()) == 1000 })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range sink.messages() {
		if seen[m] {
			t.Fatalf("duplicate %q", m)
		}
		seen[m] = true
	}

	// Restart: positions come back, and nothing acknowledged is sent again.
	sink2 := &fakeSink{name: "a"}
	p2 := newTestPipeline(t, dir, []Sink{sink2}, nil, nil)
	if got := string(p2.Emitter("pods").State()["pos"]); got != "9" {
		t.Fatalf("recovered position %q, want 9", got)
	}
	p2.Start(context.Background())
	emitN(t, p2.Emitter("pods"), src, 1000, 5, "10").Wait(context.Background())
	waitFor(t, "5 new records", func() bool { return len(sink2.messages()) == 5 })
	p2.Stop(context.Background())
	if m := sink2.messages(); m[0] != "line 1000" {
		t.Fatalf("after restart the sink got %v", m)
	}
}

func TestPipelineRetriesAndDeadLetters(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	flaky := &fakeSink{name: "flaky", fail: func(b *SinkBatch, attempt int) error {
		if attempt < 3 {
			return errors.New("unavailable")
		}
		return nil
	}}
	partial := &fakeSink{name: "partial", fail: func(b *SinkBatch, attempt int) error {
		var re RecordErrors
		for i, r := range b.Records {
			if string(r.Message) == "line 3" {
				re.Failed = append(re.Failed, RecordError{Index: i, Err: errors.New("too big")})
			}
		}
		if len(re.Failed) == 0 {
			return nil
		}
		return &re
	}}
	broken := &fakeSink{name: "broken", fail: func(*SinkBatch, int) error { return Permanent(errors.New("permission denied")) }}
	p := newTestPipeline(t, dir, []Sink{flaky, partial, broken}, nil, reg)
	p.Start(context.Background())
	emitN(t, p.Emitter("pods"), NewSource(1, "pods", nil), 0, 10, "")
	waitFor(t, "flaky to succeed", func() bool { return len(flaky.messages()) == 10 })
	waitFor(t, "partial", func() bool { return len(partial.messages()) == 9 })
	m := p.metrics
	waitFor(t, "dead letters counted", func() bool {
		return testutil.ToFloat64(m.SinkRecords.WithLabelValues("broken", ResultDeadLetter)) == 10 &&
			testutil.ToFloat64(m.SinkRecords.WithLabelValues("partial", ResultDeadLetter)) == 1
	})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.SinkRecords.WithLabelValues("flaky", ResultRetried)); got != 20 {
		t.Errorf("retried = %v, want 20 (two failed attempts of 10 records)", got)
	}
	if got := testutil.ToFloat64(m.SinkRecords.WithLabelValues("partial", ResultSent)); got != 9 {
		t.Errorf("partial sent = %v, want 9", got)
	}
	// The dead-lettered records are on disk with their reason.
	rep, err := buffer.Inspect(dir + "/deadletter/broken")
	if err != nil {
		t.Fatal(err)
	}
	if n := reportRecords(rep); n != 10 {
		t.Errorf("dead-letter buffer holds %d records, want 10", n)
	}
}

func TestPipelineRoutes(t *testing.T) {
	a, b := &fakeSink{name: "a"}, &fakeSink{name: "b"}
	reg := prometheus.NewRegistry()
	p := newTestPipeline(t, t.TempDir(), []Sink{a, b}, []RouteConfig{
		{Match: RouteMatch{Namespace: "kube-*"}, Sinks: []string{"b"}},
		{Match: RouteMatch{Input: "pods"}, Sinks: []string{"a"}},
	}, reg)
	p.Start(context.Background())
	em := p.Emitter("pods")
	emitN(t, em, NewSource(1, "pods", &Kube{Namespace: "kube-system"}), 0, 3, "")
	emitN(t, em, NewSource(2, "pods", &Kube{Namespace: "shop"}), 10, 4, "")
	emitN(t, p.Emitter("apps"), NewSource(3, "apps", nil), 20, 5, "") // no route: not buffered
	waitFor(t, "routed records", func() bool { return len(a.messages()) == 4 && len(b.messages()) == 3 })
	p.Stop(context.Background())
	if got := testutil.ToFloat64(p.metrics.InputErrors.WithLabelValues("apps", "unrouted")); got != 5 {
		t.Errorf("unrouted = %v, want 5", got)
	}
}

// TestPipelineRouteDrops: a route with sinks: [] drops its records, counted as dropped by a
// route (not as unrouted) and in the pod's dropped series.
func TestPipelineRouteDrops(t *testing.T) {
	a := &fakeSink{name: "a"}
	p := newTestPipeline(t, t.TempDir(), []Sink{a}, []RouteConfig{
		{Match: RouteMatch{Namespace: "noisy"}, Sinks: []string{}},
		{Match: RouteMatch{}, Sinks: []string{"a"}},
	}, prometheus.NewRegistry())
	p.Start(context.Background())
	em := p.Emitter("pods")
	emitN(t, em, NewSource(1, "pods", &Kube{Namespace: "noisy", Pod: "x", Container: "c"}), 0, 7, "")
	emitN(t, em, NewSource(2, "pods", &Kube{Namespace: "shop", Pod: "y", Container: "c"}), 10, 3, "")
	waitFor(t, "routed records", func() bool { return len(a.messages()) == 3 })
	p.Stop(context.Background())
	if got := testutil.ToFloat64(p.metrics.RouteDropped.WithLabelValues("pods")); got != 7 {
		t.Errorf("route dropped = %v, want 7", got)
	}
	if got := testutil.ToFloat64(p.metrics.InputErrors.WithLabelValues("pods", "unrouted")); got != 0 {
		t.Errorf("unrouted = %v, want 0", got)
	}
}

func TestPipelineStopKeepsUnsentForNextStart(t *testing.T) {
	dir := t.TempDir()
	block := make(chan struct{})
	stuck := &fakeSink{name: "s", fail: func(*SinkBatch, int) error { <-block; return nil }}
	p := newTestPipeline(t, dir, []Sink{stuck}, nil, nil)
	p.Start(context.Background())
	emitN(t, p.Emitter("pods"), NewSource(1, "pods", nil), 0, 10, "").Wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go func() { <-ctx.Done(); close(block) }()
	p.Stop(ctx)
	// The send was cancelled mid-flight or finished: either way a restart delivers all 10 at least once.
	again := &fakeSink{name: "s"}
	p2 := newTestPipeline(t, dir, []Sink{again}, nil, nil)
	p2.Start(context.Background())
	if len(stuck.messages()) < 10 {
		waitFor(t, "redelivery", func() bool { return len(again.messages()) == 10 })
	}
	p2.Stop(context.Background())
}

func reportRecords(rep buffer.Report) int64 {
	var n int64
	for _, s := range rep.Segments {
		n += s.Records
	}
	return n
}
