package exporter

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

func TestPodLogsExposition(t *testing.T) {
	p := NewPodLogs()
	a := p.Acquire("shop", "cart-7d9f", "app", "stdout")
	b := p.Acquire("shop", "cart-7d9f", "app", "stderr")
	odd := p.Acquire(`we"ird`, `back\slash`, "new\nline", "stdout")
	a.Add(3, 300)
	a.Add(2, 50)
	b.Add(1, 10)
	odd.Add(7, 70)
	b.AddDropped("too_long", 4)
	b.AddDropped("buffer_full", 1)
	b.AddDropped("too_long", 1)

	out := scrape(t, p)
	e := parseProm(t, out)
	want := map[string]float64{
		podKey(PodLogLinesName, "shop", "cart-7d9f", "app", "stdout"):                            5,
		podKey(PodLogBytesName, "shop", "cart-7d9f", "app", "stdout"):                            350,
		podKey(PodLogLinesName, "shop", "cart-7d9f", "app", "stderr"):                            1,
		podKey(PodLogBytesName, "shop", "cart-7d9f", "app", "stderr"):                            10,
		podKey(PodLogLinesName, `we"ird`, `back\slash`, "new\nline", "stdout"):                   7,
		podKey(PodLogBytesName, `we"ird`, `back\slash`, "new\nline", "stdout"):                   70,
		podKey(PodLogDroppedName, "shop", "cart-7d9f", "app", "stderr", "reason", "too_long"):    5,
		podKey(PodLogDroppedName, "shop", "cart-7d9f", "app", "stderr", "reason", "buffer_full"): 1,
	}
	if len(e.samples) != len(want) {
		t.Errorf("got %d samples, want %d:\n%s", len(e.samples), len(want), out)
	}
	for k, v := range want {
		if got, ok := e.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, name := range []string{PodLogLinesName, PodLogBytesName, PodLogDroppedName} {
		if len(e.help[name]) != 1 || len(e.types[name]) != 1 || e.types[name][0] != model.MetricTypeCounter {
			t.Errorf("%s: HELP %q TYPE %v, want one each, counter", name, e.help[name], e.types[name])
		}
	}

	// client_golang's parser agrees, and rejects repeated HELP/TYPE or ungrouped samples.
	mfs := parseExpfmt(t, out)
	lines := mfs[PodLogLinesName]
	if lines == nil || lines.GetType() != dto.MetricType_COUNTER || len(lines.Metric) != 3 {
		t.Fatalf("expfmt %s: %v", PodLogLinesName, lines)
	}
	for _, m := range lines.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if got["namespace"] == `we"ird` {
			if got["pod"] != `back\slash` || got["container"] != "new\nline" || m.Counter.GetValue() != 7 {
				t.Errorf("escaped series read back as %v = %v", got, m.Counter.GetValue())
			}
		}
	}
}

func TestPodLogsEmptyWritesNothing(t *testing.T) {
	p := NewPodLogs()
	if out := scrape(t, p); len(out) != 0 {
		t.Fatalf("empty PodLogs wrote %q", out)
	}
	s := p.Acquire("a", "b", "c", "stdout")
	defer p.Release(s)
	out := string(scrape(t, p))
	if strings.Contains(out, PodLogDroppedName) {
		t.Errorf("dropped family exposed with no drops:\n%s", out)
	}
	if strings.Count(out, "# HELP") != 2 {
		t.Errorf("want HELP for lines and bytes only:\n%s", out)
	}
}

func TestAddDroppedReasonsAreBounded(t *testing.T) {
	p := NewPodLogs()
	s := p.Acquire("ns", "pod", "c", "stdout")
	reasons := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "a", `q"uote`}
	for i, r := range reasons {
		s.AddDropped(r, uint64(i+1))
	}
	e := parseProm(t, scrape(t, p))
	// The first maxDropReasons-1 = 9 reasons have their own series; the rest are other.
	want := map[string]float64{"a": 1 + 12, "b": 2, "c": 3, "i": 9, DropReasonOther: 10 + 11 + 13}
	for r, v := range want {
		k := podKey(PodLogDroppedName, "ns", "pod", "c", "stdout", "reason", r)
		if e.samples[k] != v {
			t.Errorf("reason %s = %v, want %v", r, e.samples[k], v)
		}
	}
}

func TestNilSeriesIsANoop(t *testing.T) {
	var s *LogSeries
	s.Add(1, 1)
	s.AddDropped("x", 1)
	NewPodLogs().Release(nil)
}

// fakeClock is a table clock the test moves; safe for concurrent readers.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_000_000, 0).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time         { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *fakeClock) install(p *Pods) *Pods  { p.logs.t.now = c.now; return p }
func (c *fakeClock) installLogs(p *PodLogs) { p.t.now = c.now }

// lifecycle steps: acquire/release a series by pod name, add to it, tell the watch a pod was
// seen or deleted, or scrape (10 s after the previous step: the scrape interval the table
// learns) and check which series are present with which lines value.
func TestPodLogsLifecycle(t *testing.T) {
	type step struct {
		op   string // acquire, release, add, scrape, seen, deleted, deleted-old-uid
		pod  string
		want map[string]float64 // scrape: pod -> lines
	}
	acq := func(pod string) step { return step{op: "acquire", pod: pod} }
	rel := func(pod string) step { return step{op: "release", pod: pod} }
	add := func(pod string) step { return step{op: "add", pod: pod} }
	scr := func(want map[string]float64) step { return step{op: "scrape", want: want} }
	type m = map[string]float64
	tests := []struct {
		name  string
		steps []step
	}{
		{"a released series is scraped for two intervals more, then gone", []step{
			acq("a"), add("a"), scr(m{"a": 1}), scr(m{"a": 1}), // interval learned: 10 s
			add("a"), rel("a"),
			scr(m{"a": 2}), // 10 s after the release
			scr(m{"a": 2}), // 20 s: two intervals, written a last time and removed
			scr(m{}),
		}},
		{"until an interval is known, a released series waits", []step{
			acq("a"), add("a"), rel("a"),
			scr(m{"a": 1}), // no interval yet
			scr(m{"a": 1}), // interval 10 s, released 20 s ago: last scrape
			scr(m{}),
		}},
		{"a second reference keeps the series", []step{
			acq("a"), acq("a"), add("a"), rel("a"),
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{"a": 1}),
			rel("a"),
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{}),
		}},
		{"re-acquired before its removal keeps its values", []step{
			acq("a"), add("a"), rel("a"), scr(m{"a": 1}),
			acq("a"), add("a"),
			scr(m{"a": 2}), scr(m{"a": 2}), scr(m{"a": 2}),
		}},
		{"re-acquired after removal starts from zero", []step{
			acq("a"), add("a"), rel("a"), scr(m{"a": 1}), scr(m{"a": 1}), scr(m{}),
			acq("a"),
			scr(m{"a": 0}),
		}},
		{"released, revived, released again is removed once", []step{
			acq("a"), acq("b"), rel("a"), acq("a"), rel("a"),
			scr(m{"a": 0, "b": 0}), scr(m{"a": 0, "b": 0}), scr(m{"b": 0}),
		}},
		{"extra releases are ignored", []step{
			acq("a"), rel("a"), rel("a"), acq("b"),
			scr(m{"a": 0, "b": 0}), scr(m{"a": 0, "b": 0}),
			rel("a"),
			scr(m{"b": 0}),
		}},
		{"a watched pod keeps its unreferenced series until deleted", []step{
			{op: "seen", pod: "a"}, acq("a"), add("a"), rel("a"),
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{"a": 1}), scr(m{"a": 1}),
			{op: "deleted", pod: "a"},
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{}),
		}},
		{"a deleted pod's series stay while its files are read", []step{
			{op: "seen", pod: "a"}, acq("a"), {op: "deleted", pod: "a"},
			scr(m{"a": 0}), scr(m{"a": 0}), scr(m{"a": 0}),
			add("a"), rel("a"),
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{}),
		}},
		{"a deletion of an older pod of the same name is ignored", []step{
			{op: "seen", pod: "a"}, acq("a"), rel("a"),
			{op: "deleted-old-uid", pod: "a"},
			scr(m{"a": 0}), scr(m{"a": 0}), scr(m{"a": 0}), scr(m{"a": 0}),
		}},
		{"the watch seeing a pod revives its doomed series", []step{
			acq("a"), add("a"), rel("a"), scr(m{"a": 1}),
			{op: "seen", pod: "a"},
			scr(m{"a": 1}), scr(m{"a": 1}), scr(m{"a": 1}),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			p := newTestPods(clock, Options{})
			held := map[string]*LogSeries{}
			for i, st := range tc.steps {
				switch st.op {
				case "acquire":
					held[st.pod] = p.Logs().Acquire("ns", st.pod, "c", "stdout")
				case "release":
					p.Logs().Release(held[st.pod])
				case "add":
					held[st.pod].Add(1, 10)
				case "seen":
					p.PodSeen(PodInfo{Namespace: "ns", Name: st.pod, UID: "uid-" + st.pod})
				case "deleted":
					p.PodDeleted("ns", st.pod, "uid-"+st.pod)
				case "deleted-old-uid":
					p.PodDeleted("ns", st.pod, "older-uid")
				case "scrape":
					clock.add(10 * time.Second)
					e := parseProm(t, scrape(t, p.Logs()))
					got := map[string]float64{}
					for pod := range st.want {
						if v, ok := e.samples[podKey(PodLogLinesName, "ns", pod, "c", "stdout")]; ok {
							got[pod] = v
						}
					}
					if len(e.samples) != 2*len(st.want) || fmt.Sprint(got) != fmt.Sprint(st.want) {
						t.Fatalf("step %d: scrape has %d samples %v, want lines %v", i, len(e.samples), got, st.want)
					}
					if n := p.logs.t.len(); n > len(st.want) {
						t.Fatalf("step %d: %d series held after scrape, want <= %d", i, n, len(st.want))
					}
				}
			}
		})
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("peer gone")
	}
	f.n--
	return len(b), nil
}

func TestWriteToReportsWriterErrors(t *testing.T) {
	p := NewPodLogs()
	for i := range 5000 { // > flushAt, so the scrape flushes more than once
		p.Acquire("ns", fmt.Sprint("pod-", i), "c", "stdout").Add(1, 1)
	}
	for _, n := range []int{0, 1} {
		if _, err := p.WriteTo(&failWriter{n: n}); err == nil {
			t.Errorf("writer failing after %d writes: no error", n)
		}
	}
	// The scratch buffer is reusable after a failed scrape.
	e := parseProm(t, scrape(t, p))
	if len(e.samples) != 10000 {
		t.Fatalf("got %d samples after a failed scrape, want 10000", len(e.samples))
	}
}

// TestConcurrentScrapeAddChurn runs Add, Acquire/Release churn and scrapes at once (meant for
// -race) and checks that the long-lived series end with exact totals.
func TestConcurrentScrapeAddChurn(t *testing.T) {
	p := NewPodLogs()
	clock := newFakeClock()
	clock.installLogs(p)
	const workers, iters = 4, 2000
	stable := make([]*LogSeries, workers)
	for i := range stable {
		stable[i] = p.Acquire("ns", fmt.Sprint("stable-", i), "c", "stdout")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(2)
		go func() { // hot path
			defer wg.Done()
			for range iters {
				stable[w].Add(1, 100)
				stable[w].AddDropped("too_long", 1)
			}
		}()
		go func() { // pods coming and going, sharing some series with other workers
			defer wg.Done()
			for i := range iters / 4 {
				s := p.Acquire("ns", fmt.Sprint("churn-", i%16), "c", "stderr")
				s.Add(1, 1)
				s.AddDropped(fmt.Sprint("r", i%6), 1)
				p.Release(s)
			}
		}()
	}
	scraped := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				close(scraped)
				return
			default:
			}
			if _, err := p.WriteTo(io.Discard); err != nil {
				scraped <- err
			}
		}
	}()
	wg.Wait()
	close(stop)
	for err := range scraped {
		t.Fatalf("concurrent scrape: %v", err)
	}
	e := parseProm(t, scrape(t, p))
	for i := range workers {
		pod := fmt.Sprint("stable-", i)
		if got := e.samples[podKey(PodLogLinesName, "ns", pod, "c", "stdout")]; got != iters {
			t.Errorf("%s lines = %v, want %d", pod, got, iters)
		}
		if got := e.samples[podKey(PodLogBytesName, "ns", pod, "c", "stdout")]; got != 100*iters {
			t.Errorf("%s bytes = %v, want %d", pod, got, 100*iters)
		}
		if got := e.samples[podKey(PodLogDroppedName, "ns", pod, "c", "stdout", "reason", "too_long")]; got != iters {
			t.Errorf("%s dropped = %v, want %d", pod, got, iters)
		}
	}
	// All churn series were released: once they waited their time, a scrape removes them.
	for range 3 {
		clock.add(10 * time.Second)
		scrape(t, p)
	}
	if p.Len() != workers {
		t.Errorf("%d series held, want %d", p.Len(), workers)
	}
}
