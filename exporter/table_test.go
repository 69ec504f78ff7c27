package exporter

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// resourceSeries is the shape the pod resource families will take: the same table machinery
// with gauge and float counter values. It proves a second family set needs no new plumbing.
type resourceSeries struct {
	seriesHead
	cpuSeconds atomic.Uint64 // float64 bits
	memory     atomic.Uint64 // float64 bits
	restarts   atomic.Uint64
}

func newResourceTable() *table[resourceSeries, *resourceSeries] {
	return newTable([]string{"namespace", "pod", "container"},
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
	now := time.Unix(1000, 0)
	p.t.now = func() time.Time { return now }
	old := p.Acquire("ns", "old", "c", "stdout")
	p.Release(old)
	now = now.Add(defaultLinger / 2)
	recent := p.Acquire("ns", "recent", "c", "stdout")
	p.Release(recent)
	for i := range 3 { // revived and re-released: queued once
		p.Release(p.Acquire("ns", "recent", "c", "stdout"))
		if p.Len() != 2 || len(p.t.doomed) != 2 {
			t.Fatalf("churn %d: %d series, %d doomed; want 2, 2", i, p.Len(), len(p.t.doomed))
		}
	}
	now = now.Add(defaultLinger/2 + 1)
	p.Release(p.Acquire("ns", "trigger", "c", "stdout"))
	if p.Len() != 2 { // old expired; recent and trigger wait
		t.Fatalf("%d series after linger, want 2", p.Len())
	}
	e := parseProm(t, scrape(t, p))
	if _, ok := e.samples[podKey(PodLogLinesName, "ns", "old", "c", "stdout")]; ok {
		t.Error("expired series still exposed")
	}
	if p.Len() != 0 {
		t.Errorf("%d series after scrape, want 0", p.Len())
	}
}
