package collector

import (
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakePods records the series the pipeline acquires and what it counts in them.
type fakePods struct {
	mu       sync.Mutex
	refuse   bool
	acquires []string
	held     map[string]*fakeSeries
}

type fakeSeries struct {
	key            string
	lines, bytes   uint64
	dropped        map[string]uint64
	refs, releases int
}

func (s *fakeSeries) Add(lines, bytes uint64) { s.lines += lines; s.bytes += bytes }
func (s *fakeSeries) AddDropped(reason string, n uint64) {
	if s.dropped == nil {
		s.dropped = map[string]uint64{}
	}
	s.dropped[reason] += n
}

func (f *fakePods) Acquire(namespace, pod, container, stream string) PodSeries {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := namespace + "/" + pod + "/" + container + "/" + stream
	f.acquires = append(f.acquires, key)
	if f.refuse {
		return nil
	}
	if f.held == nil {
		f.held = map[string]*fakeSeries{}
	}
	s := f.held[key]
	if s == nil {
		s = &fakeSeries{key: key}
		f.held[key] = s
	}
	s.refs++
	return s
}

func (f *fakePods) Release(s PodSeries) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.(*fakeSeries).releases++
}

func (f *fakePods) acquired() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.acquires...)
	sort.Strings(out)
	return out
}

func emitStreams(t *testing.T, em Emitter, src *Source, streams ...Stream) {
	t.Helper()
	b := &Batch{}
	for i, st := range streams {
		b.Records = append(b.Records, Record{Source: src, Time: int64(i), ID: MakeID(src.Key, uint64(i)), Stream: st, Message: []byte("0123456789")})
	}
	if _, err := em.Emit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// A pod series is born with the first record of its stream: a tail source that only writes
// stdout gets one series, not three; a forward source gets only app; a source without a pod
// gets none.
func TestPodSeriesBornWithFirstRecord(t *testing.T) {
	pods := &fakePods{}
	p := newTestPipeline(t, t.TempDir(), []Sink{&fakeSink{name: "a"}}, nil, nil)
	p.pods = pods
	defer p.Stop(context.Background())
	em := p.Emitter("pods")

	tailed := NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	emitStreams(t, em, tailed, StreamStdout, StreamStdout)
	if got := pods.acquired(); len(got) != 1 || got[0] != "shop/cart/app/stdout" {
		t.Fatalf("after stdout lines: acquired %v, want only stdout", got)
	}
	emitStreams(t, em, tailed, StreamStderr, StreamStdout)
	em.Dropped(tailed, StreamUnknown, "garbage", 1) // no stream: no series
	forwarded := NewSource(2, "apps", &Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	emitStreams(t, p.Emitter("apps"), forwarded, StreamApp)
	emitStreams(t, em, NewSource(3, "pods", &Kube{Node: "n1"}), StreamStdout) // no pod
	emitStreams(t, em, NewSource(4, "pods", nil), StreamStdout)

	want := []string{"shop/cart/app/app", "shop/cart/app/stderr", "shop/cart/app/stdout"}
	if got := pods.acquired(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("acquired %v, want %v", got, want)
	}
	if s := pods.held["shop/cart/app/stdout"]; s.lines != 3 || s.bytes != 30 {
		t.Errorf("stdout counted %d lines %d bytes, want 3, 30", s.lines, s.bytes)
	}

	// A drop on a stream that has not logged yet is an event of that stream: it births it.
	tailed2 := NewSource(5, "pods", &Kube{Namespace: "shop", Pod: "cart-2", Container: "app"})
	em.Dropped(tailed2, StreamStderr, "rate_limit", 2)
	if s := pods.held["shop/cart-2/app/stderr"]; s == nil || s.dropped["rate_limit"] != 2 {
		t.Errorf("drop before any line: series %+v", s)
	}

	// A record delivered changed is an input error, not a drop: the per-pod dropped series (read
	// as loss by alerts) must not count it.
	em.Altered(tailed, StreamStdout, "truncated", 3)
	if s := pods.held["shop/cart/app/stdout"]; len(s.dropped) != 0 {
		t.Errorf("altered records counted as dropped: %v", s.dropped)
	}
	if n := testutil.ToFloat64(p.metrics.InputErrors.WithLabelValues("pods", "truncated")); n != 3 {
		t.Errorf("input errors {truncated} = %v, want 3", n)
	}

	em.Release(tailed)
	for _, k := range []string{"shop/cart/app/stdout", "shop/cart/app/stderr"} {
		if s := pods.held[k]; s.releases != 1 {
			t.Errorf("%s released %d times, want 1", k, s.releases)
		}
	}
	emitStreams(t, em, tailed, StreamStdout) // after its release a source acquires nothing
	if n := len(pods.acquired()); n != 4 {
		t.Errorf("%d acquires after a released source emitted, want 4", n)
	}
}

// When the exporter's budget refuses a series, records are still delivered; the source asks
// again only after podSeriesRetry, not on every batch.
func TestPodSeriesRefused(t *testing.T) {
	pods := &fakePods{refuse: true}
	p := newTestPipeline(t, t.TempDir(), []Sink{&fakeSink{name: "a"}}, nil, nil)
	p.pods = pods
	defer p.Stop(context.Background())
	em := p.Emitter("pods")
	src := NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	for range 5 {
		emitStreams(t, em, src, StreamStdout)
	}
	if n := len(pods.acquired()); n != 1 {
		t.Fatalf("%d acquires in 5 batches while refused, want 1", n)
	}
	pods.mu.Lock()
	pods.refuse = false
	pods.mu.Unlock()
	src.stats.Load().refusedUntil = 0 // the retry time has come
	emitStreams(t, em, src, StreamStdout)
	if s := pods.held["shop/cart/app/stdout"]; s == nil || s.lines != 1 {
		t.Fatalf("after the retry: series %+v, want 1 line", s)
	}
}
