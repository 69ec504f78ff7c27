package exporter

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fillPodLogs creates n series with the label values of the client_golang baseline
// (shared/anchors/exporter): 50 namespaces, 8 series per pod, 4 containers, 2 streams.
func fillPodLogs(n int) (*PodLogs, []*LogSeries) {
	p := NewPodLogs()
	all := make([]*LogSeries, n)
	for i := range n {
		s := p.Acquire(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("pod-%d", i/8), fmt.Sprintf("c-%d", (i/2)%4),
			[]string{"stdout", "stderr"}[i%2])
		s.Add(uint64(i), uint64(i)*200)
		all[i] = s
	}
	return p, all
}

var sizes = []int{1_000, 10_000, 100_000}

// BenchmarkScrape is one scrape of all three families (the dropped family is empty, as in
// the baseline's single CounterVec; lines and bytes make it two samples per series).
func BenchmarkScrape(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			p, _ := fillPodLogs(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
		})
	}
}

// BenchmarkScrapeHTTPGzip is one /metrics request with gzip at 100k series, as a scraper sees it.
func BenchmarkScrapeHTTPGzip(b *testing.B) {
	p, _ := fillPodLogs(100_000)
	h := Handler(nil, p)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(discardResponse{h: http.Header{}}, req)
	}
}

type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// BenchmarkAdd is the hot-path cost of counting one line on a known series.
func BenchmarkAdd(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			_, all := fillPodLogs(n)
			s := all[n/2]
			b.ReportAllocs()
			for b.Loop() {
				s.Add(1, 250)
			}
		})
	}
}

func BenchmarkAddDropped(b *testing.B) {
	_, all := fillPodLogs(1_000)
	s := all[7]
	s.AddDropped("too_long", 1)
	b.ReportAllocs()
	for b.Loop() {
		s.AddDropped("too_long", 1)
	}
}

// BenchmarkAcquireRelease takes and drops a reference on an existing series (a file reopened
// after rotation, a second reader of the same stream).
func BenchmarkAcquireRelease(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			p, _ := fillPodLogs(n)
			b.ReportAllocs()
			for b.Loop() {
				p.Release(p.Acquire("ns-37", "pod-17", "c-0", "stderr")) // i = 137
			}
		})
	}
}

// BenchmarkPodChurn adds a pod's 8 series, releases them and removes them (the removal a
// scrape does), among 100k series: the counterpart of the baseline's DeletePartialMatch.
func BenchmarkPodChurn(b *testing.B) {
	p, _ := fillPodLogs(100_000)
	var held [8]*LogSeries
	b.ReportAllocs()
	for b.Loop() {
		for i := range held {
			held[i] = p.Acquire("ns-8", "pod-new", fmt.Sprint("c-", i/2), []string{"stdout", "stderr"}[i%2])
		}
		for _, s := range held {
			p.Release(s)
		}
		p.t.mu.Lock()
		p.t.sweepLocked(1 << 62)
		p.t.mu.Unlock()
	}
}
