package exporter

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

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
	for i, r := range []string{"a", "b", "c", "d", "e", "a", `q"uote`} {
		s.AddDropped(r, uint64(i+1))
	}
	e := parseProm(t, scrape(t, p))
	want := map[string]float64{"a": 1 + 6, "b": 2, "c": 3, DropReasonOther: 4 + 5 + 7}
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

// lifecycle steps: acquire/release a series by name, add to it, or scrape and check which
// series are present with which lines value.
func TestPodLogsLifecycle(t *testing.T) {
	type step struct {
		op   string // acquire, release, add, scrape
		pod  string
		want map[string]float64 // scrape: pod -> lines
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"released series is scraped once more, then gone", []step{
			{op: "acquire", pod: "a"}, {op: "add", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "add", pod: "a"}, {op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 2}},
			{op: "scrape", want: map[string]float64{}},
		}},
		{"release without any scrape in between still gets its scrape", []step{
			{op: "acquire", pod: "a"}, {op: "add", pod: "a"}, {op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "scrape", want: map[string]float64{}},
		}},
		{"a second reference keeps the series", []step{
			{op: "acquire", pod: "a"}, {op: "acquire", pod: "a"}, {op: "add", pod: "a"},
			{op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "scrape", want: map[string]float64{}},
		}},
		{"re-acquired before its last scrape keeps its values", []step{
			{op: "acquire", pod: "a"}, {op: "add", pod: "a"}, {op: "release", pod: "a"},
			{op: "acquire", pod: "a"}, {op: "add", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 2}},
			{op: "scrape", want: map[string]float64{"a": 2}},
		}},
		{"re-acquired after removal starts from zero", []step{
			{op: "acquire", pod: "a"}, {op: "add", pod: "a"}, {op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 1}},
			{op: "acquire", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 0}},
		}},
		{"released, revived, released again is removed once", []step{
			{op: "acquire", pod: "a"}, {op: "acquire", pod: "b"},
			{op: "release", pod: "a"}, {op: "acquire", pod: "a"}, {op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"a": 0, "b": 0}},
			{op: "scrape", want: map[string]float64{"b": 0}},
		}},
		{"extra releases are ignored", []step{
			{op: "acquire", pod: "a"}, {op: "release", pod: "a"}, {op: "release", pod: "a"},
			{op: "acquire", pod: "b"},
			{op: "scrape", want: map[string]float64{"a": 0, "b": 0}},
			{op: "release", pod: "a"},
			{op: "scrape", want: map[string]float64{"b": 0}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPodLogs()
			held := map[string]*LogSeries{}
			for i, st := range tc.steps {
				switch st.op {
				case "acquire":
					held[st.pod] = p.Acquire("ns", st.pod, "c", "stdout")
				case "release":
					p.Release(held[st.pod])
				case "add":
					held[st.pod].Add(1, 10)
				case "scrape":
					e := parseProm(t, scrape(t, p))
					got := map[string]float64{}
					for pod := range st.want {
						if v, ok := e.samples[podKey(PodLogLinesName, "ns", pod, "c", "stdout")]; ok {
							got[pod] = v
						}
					}
					if len(e.samples) != 2*len(st.want) || fmt.Sprint(got) != fmt.Sprint(st.want) {
						t.Fatalf("step %d: scrape has %d samples %v, want lines %v", i, len(e.samples), got, st.want)
					}
					if p.Len() > len(st.want) {
						t.Fatalf("step %d: %d series held after scrape, want <= %d", i, p.Len(), len(st.want))
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
	// All churn series were released: after the scrape above, they are gone.
	scrape(t, p)
	if p.Len() != workers {
		t.Errorf("%d series held, want %d", p.Len(), workers)
	}
}
