package exporter

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// resourceSeries is the shape the pod resource families will take: the same table machinery
// with gauge and float counter values. It proves a second family set needs no new plumbing.
type resourceSeries struct {
	seriesHead[*resourceSeries]
	cpuSeconds atomic.Uint64 // float64 bits
	memory     atomic.Uint64 // float64 bits
	restarts   atomic.Uint64
}

func (s *resourceSeries) reset() {
	s.cpuSeconds.Store(0)
	s.memory.Store(0)
	s.restarts.Store(0)
}

func newResourceTable() *table[resourceSeries, *resourceSeries] {
	return newTable([]string{"namespace", "pod", "container"}, nil,
		newFamily("test_pod_cpu_seconds_total", "CPU time.", typeCounter,
			func(dst []byte, name string, s *resourceSeries) []byte {
				return appendFloatSample(dst, name, s.labels, "", math.Float64frombits(s.cpuSeconds.Load()))
			}),
		gaugeFamily("test_pod_memory_working_set_bytes", "Working set.\nSecond line \\ with backslash.",
			func(s *resourceSeries) float64 { return math.Float64frombits(s.memory.Load()) }),
		counterFamily("test_pod_restarts_total", "Restarts.",
			func(s *resourceSeries) uint64 { return s.restarts.Load() }),
	)
}

func TestTableGaugeFamilies(t *testing.T) {
	tb := newResourceTable()
	a := tb.acquire("ns", "pod-a", "app")
	a.cpuSeconds.Store(math.Float64bits(1.25))
	a.memory.Store(math.Float64bits(123456789))
	a.restarts.Store(3)
	b := tb.acquire("ns", "pod-b", "app")
	b.memory.Store(math.Float64bits(math.NaN()))
	c := tb.acquire("ns", "pod-c", "app")
	c.memory.Store(math.Float64bits(math.Inf(1)))
	c.cpuSeconds.Store(math.Float64bits(1e-9))

	out := scrape(t, tb)
	e := parseProm(t, out)
	want := map[string]float64{
		seriesKey("test_pod_cpu_seconds_total", "namespace", "ns", "pod", "pod-a", "container", "app"):        1.25,
		seriesKey("test_pod_memory_working_set_bytes", "namespace", "ns", "pod", "pod-a", "container", "app"): 123456789,
		seriesKey("test_pod_restarts_total", "namespace", "ns", "pod", "pod-a", "container", "app"):           3,
		seriesKey("test_pod_memory_working_set_bytes", "namespace", "ns", "pod", "pod-c", "container", "app"): math.Inf(1),
		seriesKey("test_pod_cpu_seconds_total", "namespace", "ns", "pod", "pod-c", "container", "app"):        1e-9,
	}
	for k, v := range want {
		if got, ok := e.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if got := e.samples[seriesKey("test_pod_memory_working_set_bytes", "namespace", "ns", "pod", "pod-b", "container", "app")]; !math.IsNaN(got) {
		t.Errorf("NaN gauge read back as %v", got)
	}
	if typ := e.types["test_pod_memory_working_set_bytes"]; len(typ) != 1 || typ[0] != model.MetricTypeGauge {
		t.Errorf("gauge TYPE = %v", typ)
	}
	if h := e.help["test_pod_memory_working_set_bytes"]; len(h) != 1 || h[0] != "Working set.\nSecond line \\ with backslash." {
		t.Errorf("HELP read back as %q", h)
	}
	parseExpfmt(t, out)
}

// An agent nobody scrapes must not keep released series forever.
func TestReleasedSeriesExpireUnscraped(t *testing.T) {
	p := NewPodLogs()
	clock := newFakeClock()
	clock.installLogs(p)
	old := p.Acquire("ns", "old", "c", "stdout")
	p.Release(old)
	clock.add(defaultLinger / 2)
	recent := p.Acquire("ns", "recent", "c", "stdout")
	p.Release(recent)
	for i := range 3 { // revived and re-released: queued once
		p.Release(p.Acquire("ns", "recent", "c", "stdout"))
		if p.Len() != 2 || len(p.t.doomed) != 2 {
			t.Fatalf("churn %d: %d series, %d doomed; want 2, 2", i, p.Len(), len(p.t.doomed))
		}
	}
	clock.add(defaultLinger/2 + 1)
	p.Release(p.Acquire("ns", "trigger", "c", "stdout"))
	if p.Len() != 2 { // old expired; recent and trigger wait
		t.Fatalf("%d series after linger, want 2", p.Len())
	}
	e := parseProm(t, scrape(t, p))
	if _, ok := e.samples[podKey(PodLogLinesName, "ns", "old", "c", "stdout")]; ok {
		t.Error("expired series still exposed")
	}
	if p.Len() != 2 { // one scrape gives no interval: recent and trigger wait for linger
		t.Fatalf("%d series after a scrape, want 2", p.Len())
	}
	clock.add(defaultLinger)
	p.Release(p.Acquire("ns", "trigger-2", "c", "stdout"))
	if p.Len() != 1 {
		t.Errorf("%d series after linger, want 1", p.Len())
	}
}

// The learned interval is the second longest recent gap, so an HA pair (two scrapers 30 s
// apart, offset by 5 s) gets a removal delay that covers a whole interval of each, and one
// long outage does not stretch it.
func TestScrapeClock(t *testing.T) {
	var c scrapeClock
	if c.interval() != 0 {
		t.Fatal("interval before any scrape")
	}
	c.observe(1e9)
	c.observe(11e9)
	if got := c.interval(); got != 10e9 {
		t.Fatalf("interval after two scrapes = %v, want 10s", time.Duration(got))
	}
	c.observe(3611e9) // an hour without scrapes
	c.observe(3621e9)
	if got := c.interval(); got != 10e9 {
		t.Fatalf("interval after an outage = %v, want 10s", time.Duration(got))
	}
	c = scrapeClock{}
	at := int64(0)
	for range 20 {
		c.observe(at + 5e9)  // replica A
		c.observe(at + 30e9) // replica B: gaps alternate 25 s and 5 s
		at += 30e9
	}
	if got := c.interval(); got != 25e9 {
		t.Fatalf("interval = %v, want 25s", time.Duration(got))
	}
	if 2*c.interval() < 30e9 {
		t.Fatal("two learned intervals do not cover one scrape of each replica")
	}
}

// A removed series is recycled for another label set: it starts from zero and carries only
// its new labels.
func TestRecycledSeriesStartClean(t *testing.T) {
	clock := newFakeClock()
	p := newTestPods(clock, Options{})
	a := p.Logs().Acquire("ns", "old-pod", "c", "stdout")
	a.Add(5, 50)
	a.AddDropped("rate_limit", 2)
	p.Logs().Release(a)
	scrapeEvery(t, clock, p, 3)
	if p.Len() != 0 || len(p.logs.t.free) != 1 {
		t.Fatalf("%d series, %d free; want 0, 1", p.Len(), len(p.logs.t.free))
	}
	b := p.Logs().Acquire("other", "new-pod", "c", "stderr")
	if b != a {
		t.Fatal("the free series was not reused")
	}
	b.Add(1, 7)
	e := scrapeEvery(t, clock, p, 1)
	checkSamples(t, e, map[string]float64{
		podKey(PodLogLinesName, "other", "new-pod", "c", "stderr"): 1,
		podKey(PodLogBytesName, "other", "new-pod", "c", "stderr"): 7,
	})
	if len(e.samples) != 2+3 { // and the three self metrics
		t.Errorf("%d samples, want 5: %v", len(e.samples), e.samples)
	}
}

// TestConcurrentPodChurn runs the watch, the tail progress hook, the hot path and scrapes at
// once while the clock moves (so series are removed and recycled under scrapes in flight; meant
// for -race), then checks the long-lived series' totals and that nothing leaked.
func TestConcurrentPodChurn(t *testing.T) {
	clock := newFakeClock()
	p := newTestPods(clock, Options{})
	const workers, iters = 4, 1500
	stable := make([]*LogSeries, workers)
	for i := range stable {
		stable[i] = p.Logs().Acquire("ns", fmt.Sprint("stable-", i), "c", "stdout")
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range iters {
				stable[w].Add(1, 10)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range iters / 3 {
				pod := fmt.Sprintf("churn-%d-%d", w, i%7)
				uid := fmt.Sprint("uid-", i)
				p.PodSeen(PodInfo{Namespace: "ns", Name: pod, UID: uid})
				s := p.Logs().Acquire("ns", pod, "c", "stderr")
				s.Add(1, 1)
				p.FileProgress(uint64(w), uint64(i), "ns", pod, "c", int64(i), 0)
				p.Logs().Release(s)
				p.FileClosed(uint64(w), uint64(i))
				p.PodDeleted("ns", pod, uid)
			}
		}()
	}
	done := make(chan struct{})
	scraped := make(chan error, 1)
	go func() {
		defer close(scraped)
		for {
			select {
			case <-done:
				return
			default:
			}
			clock.add(time.Second)
			var b bytes.Buffer
			if _, err := p.WriteTo(&b); err != nil {
				scraped <- err
				return
			}
			if _, err := parsePromErr(b.Bytes()); err != nil {
				scraped <- err
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	for err := range scraped {
		t.Fatal(err)
	}
	e := scrapeEvery(t, clock, p, 3)
	for i := range workers {
		if got := e.samples[podKey(PodLogLinesName, "ns", fmt.Sprint("stable-", i), "c", "stdout")]; got != iters {
			t.Errorf("stable-%d lines = %v, want %d", i, got, iters)
		}
	}
	if p.Len() != workers {
		t.Errorf("%d series left, want the %d stable ones", p.Len(), workers)
	}
	if got := e.samples[seriesKey(SeriesName)]; got != 2*workers {
		t.Errorf("series gauge = %v, want %d", got, 2*workers)
	}
	for _, n := range []int{len(p.logs.t.groups.byHash), len(p.tail.t.groups.byHash), len(p.disk.t.groups.byHash), len(p.info.t.groups.byHash)} {
		if n != 0 {
			t.Errorf("%d pod groups left after every watched pod was deleted", n)
		}
	}
}
