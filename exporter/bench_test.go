package exporter

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// The benchmarks run tailgate's exporter and client_golang side by side in one run, on the
// same label sets (the client_golang baseline of shared/anchors/exporter: 50 namespaces, 8
// series per pod, 4 containers, 2 streams). "series" counts exposed samples: a tailgate log
// series exposes two (lines and bytes), so n samples are n/2 log series, and client_golang gets
// two CounterVecs (lines, bytes) of n/2 children each.
//
//	go test -run '^$' -bench 'Scrape|Update|Churn|Memory' -benchmem ./exporter/

var benchSizes = []int{10_000, 100_000, 1_000_000}

func benchLabels(i int) (ns, pod, ctr, stream string) {
	return fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("pod-%d", i/8), fmt.Sprintf("c-%d", (i/2)%4),
		[]string{"stdout", "stderr"}[i%2]
}

// fillPodLogs creates n/2 log series (n samples) in a Pods with no budget.
func fillPodLogs(n int) (*Pods, []*LogSeries) {
	p := NewPods(Options{MaxSeries: -1})
	all := make([]*LogSeries, n/2)
	for i := range all {
		s := p.Logs().Acquire(benchLabels(i))
		s.Add(uint64(i), uint64(i)*200)
		all[i] = s
	}
	return p, all
}

// fillClientGolang is the same in client_golang: two CounterVecs with n/2 children each.
func fillClientGolang(n int) (*prometheus.Registry, *prometheus.CounterVec, *prometheus.CounterVec) {
	reg := prometheus.NewRegistry()
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{Name: PodLogLinesName, Help: "Log lines read per container stream."}, podLogLabels)
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: PodLogBytesName, Help: "Log bytes read per container stream."}, podLogLabels)
	reg.MustRegister(lines, bytes)
	for i := range n / 2 {
		ns, pod, ctr, st := benchLabels(i)
		lines.WithLabelValues(ns, pod, ctr, st).Add(float64(i))
		bytes.WithLabelValues(ns, pod, ctr, st).Add(float64(i) * 200)
	}
	return reg, lines, bytes
}

// writeClientGolang is a promhttp scrape without HTTP: Gather, then text encoding.
func writeClientGolang(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

func perSeries(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
}

// cpuClock measures the process's CPU time (user+sys) over a benchmark loop: on a shared,
// overloaded machine wall time includes waiting for a CPU, CPU time much less so.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) cpuClock {
	b.ReportAllocs()
	return cpuClock{cpuNow()}
}

// report adds cpu-ns/op.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkScrape is one text scrape of n samples.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("series=%d/impl=tailgate", n), func(b *testing.B) {
			p, _ := fillPodLogs(n)
			cpu := startCPU(b)
			for b.Loop() {
				if _, err := p.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
			perSeries(b, n)
		})
		b.Run(fmt.Sprintf("series=%d/impl=client_golang", n), func(b *testing.B) {
			reg, _, _ := fillClientGolang(n)
			cpu := startCPU(b)
			for b.Loop() {
				if err := writeClientGolang(io.Discard, reg); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
			perSeries(b, n)
		})
	}
}

type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// countingResponse is a ResponseWriter that counts the body bytes.
type countingResponse struct {
	h http.Header
	n *countWriter
}

func (c countingResponse) Header() http.Header         { return c.h }
func (c countingResponse) Write(b []byte) (int, error) { return c.n.Write(b) }
func (c countingResponse) WriteHeader(int)             {}

// BenchmarkScrapeHTTPGzip is one /metrics request with Accept-Encoding: gzip at 100k samples,
// as a scraper sees it: tailgate's Handler against promhttp.HandlerFor. tailgate-1core is the
// same handler with GOMAXPROCS 1, where it keeps to the single-threaded gzip writer.
func BenchmarkScrapeHTTPGzip(b *testing.B) {
	const n = 100_000
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	for _, procs := range []int{runtime.GOMAXPROCS(0), 1} {
		name := "tailgate"
		if procs == 1 {
			name = "tailgate-1core"
		}
		b.Run(fmt.Sprintf("series=%d/impl=%s", n, name), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			p, _ := fillPodLogs(n)
			h := Handler(nil, nil, p)
			var size countWriter
			cpu := startCPU(b)
			for b.Loop() {
				size = 0
				h.ServeHTTP(countingResponse{h: http.Header{}, n: &size}, req)
			}
			cpu.report(b)
			perSeries(b, n)
			b.ReportMetric(float64(size), "gz-bytes")
		})
	}
	b.Run(fmt.Sprintf("series=%d/impl=client_golang", n), func(b *testing.B) {
		reg, _, _ := fillClientGolang(n)
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		cpu := startCPU(b)
		for b.Loop() {
			h.ServeHTTP(discardResponse{h: http.Header{}}, req)
		}
		cpu.report(b)
		perSeries(b, n)
	})
}

// BenchmarkGzipLevels compresses one 100k-sample exposition with the candidates for the
// handler; it reports the compressed size, which the scraper's network and CPU pay for.
func BenchmarkGzipLevels(b *testing.B) {
	p, _ := fillPodLogs(100_000)
	var text bytes.Buffer
	if _, err := p.WriteTo(&text); err != nil {
		b.Fatal(err)
	}
	type compressor interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	for _, c := range []struct {
		name string
		new  func() compressor
	}{
		{"stdlib-default", func() compressor { return stdgzip.NewWriter(io.Discard) }},
		{"stdlib-1", func() compressor { w, _ := stdgzip.NewWriterLevel(io.Discard, 1); return w }},
		{"klauspost-1", func() compressor { w, _ := kgzip.NewWriterLevel(io.Discard, 1); return w }},
		{"klauspost-2", func() compressor { w, _ := kgzip.NewWriterLevel(io.Discard, 2); return w }},
		{"klauspost-huffman", func() compressor { w, _ := kgzip.NewWriterLevel(io.Discard, kgzip.HuffmanOnly); return w }},
		{"klauspost-stateless", func() compressor { w, _ := kgzip.NewWriterLevel(io.Discard, kgzip.StatelessCompression); return w }},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := c.new()
			var size countWriter
			b.SetBytes(int64(text.Len()))
			cpu := startCPU(b)
			for b.Loop() {
				size = 0
				w.Reset(&size)
				if _, err := w.Write(text.Bytes()); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
			b.ReportMetric(float64(size), "gz-bytes")
			b.ReportMetric(float64(text.Len())/float64(size), "ratio")
		})
	}
}

type countWriter int

func (c *countWriter) Write(b []byte) (int, error) { *c += countWriter(len(b)); return len(b), nil }

// BenchmarkScraperParse is the scraper's side: Prometheus' own parsers reading one 100k-sample
// exposition in the text format, OpenMetrics text and delimited protobuf (the formats a
// handler could negotiate). It decides whether negotiating OpenMetrics or protobuf would help
// Prometheus.
func BenchmarkScraperParse(b *testing.B) {
	const n = 100_000
	reg, _, _ := fillClientGolang(n)
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name   string
		format expfmt.Format
		ctype  string
	}{
		{"text", expfmt.NewFormat(expfmt.TypeTextPlain), ContentType},
		{"openmetrics", expfmt.NewFormat(expfmt.TypeOpenMetrics), "application/openmetrics-text; version=1.0.0; charset=utf-8"},
		{"protobuf", expfmt.NewFormat(expfmt.TypeProtoDelim), "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"},
	} {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, f.format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
		}
		data := buf.Bytes()
		b.Run(fmt.Sprintf("series=%d/format=%s", n, f.name), func(b *testing.B) {
			st := labels.NewSymbolTable()
			cpu := startCPU(b)
			samples := 0
			for b.Loop() {
				p, err := textparse.New(data, f.ctype, st, textparse.ParserOptions{})
				if err != nil {
					b.Fatal(err)
				}
				samples = 0
				var l labels.Labels
				for {
					et, err := p.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if et == textparse.EntrySeries {
						p.Labels(&l)
						samples++
					}
				}
			}
			cpu.report(b)
			if samples != n {
				b.Fatalf("parsed %d samples, want %d", samples, n)
			}
			b.ReportMetric(float64(len(data)), "bytes")
			perSeries(b, n)
		})
	}
}

// BenchmarkUpdate is the hot-path cost of counting a batch of lines on a known series: an Add
// on a held series (tailgate) against Add on a held client_golang Counter, and against
// WithLabelValues(...).Add (what the anchor baseline measured).
func BenchmarkUpdate(b *testing.B) {
	const n = 100_000
	b.Run("impl=tailgate", func(b *testing.B) {
		_, all := fillPodLogs(n)
		s := all[n/4]
		cpu := startCPU(b)
		for b.Loop() {
			s.Add(1, 250)
		}
		cpu.report(b)
	})
	b.Run("impl=client_golang/held", func(b *testing.B) {
		_, lines, bytes := fillClientGolang(n)
		l, by := lines.WithLabelValues("ns-3", "pod-17", "c-1", "stdout"), bytes.WithLabelValues("ns-3", "pod-17", "c-1", "stdout")
		cpu := startCPU(b)
		for b.Loop() {
			l.Add(1)
			by.Add(250)
		}
		cpu.report(b)
	})
	b.Run("impl=client_golang/by-labels", func(b *testing.B) {
		_, lines, bytes := fillClientGolang(n)
		cpu := startCPU(b)
		for b.Loop() {
			lines.WithLabelValues("ns-3", "pod-17", "c-1", "stdout").Add(1)
			bytes.WithLabelValues("ns-3", "pod-17", "c-1", "stdout").Add(250)
		}
		cpu.report(b)
	})
}

func BenchmarkAddDropped(b *testing.B) {
	_, all := fillPodLogs(1_000)
	s := all[7]
	s.AddDropped("rate_limit", 1)
	cpu := startCPU(b)
	for b.Loop() {
		s.AddDropped("rate_limit", 1)
	}
	cpu.report(b)
}

// BenchmarkAcquireRelease takes and drops a reference on an existing series (a file reopened
// after rotation, a second reader of the same stream).
func BenchmarkAcquireRelease(b *testing.B) {
	p, _ := fillPodLogs(100_000)
	cpu := startCPU(b)
	for b.Loop() {
		p.Logs().Release(p.Logs().Acquire("ns-37", "pod-17", "c-0", "stderr")) // i = 137
	}
	cpu.report(b)
}

// churnPods are the names of the pods that come and go in BenchmarkPodChurn.
var churnPods = func() []string {
	out := make([]string, 1024)
	for i := range out {
		out[i] = fmt.Sprintf("churn-%d", i)
	}
	return out
}()

var churnCtrs = [4]string{"c-0", "c-1", "c-2", "c-3"}
var churnStreams = [2]string{"stdout", "stderr"}

// BenchmarkPodChurn is one pod coming and going among the series of 100k samples: its 8 log
// series (4 containers, 2 streams) are created, released and removed (what a scrape two
// intervals later does), the counterpart of client_golang's WithLabelValues and
// DeletePartialMatch; and the same with the watch on (PodSeen, PodDeleted, its info series).
func BenchmarkPodChurn(b *testing.B) {
	const n = 100_000
	for _, watch := range []bool{false, true} {
		name := fmt.Sprintf("series=%d/impl=tailgate", n)
		if watch {
			name += "-watch"
		}
		b.Run(name, func(b *testing.B) {
			p, _ := fillPodLogs(n)
			clock := newFakeClock()
			p.logs.t.now, p.info.t.now = clock.now, clock.now
			var held [8]*LogSeries
			i := 0
			cpu := startCPU(b)
			for b.Loop() {
				pod := churnPods[i%len(churnPods)]
				i++
				if watch {
					p.PodSeen(PodInfo{Namespace: "ns-8", Name: pod, UID: pod, WorkloadKind: "Deployment", Workload: "churn", Phase: "Running"})
				}
				for j := range held {
					held[j] = p.Logs().Acquire("ns-8", pod, churnCtrs[j/2], churnStreams[j%2])
					held[j].Add(1, 100)
				}
				for _, s := range held {
					p.Logs().Release(s)
				}
				if watch {
					p.PodDeleted("ns-8", pod, pod)
				}
				clock.add(defaultLinger)
				p.logs.t.sweepAt(clock.now().UnixNano())
				p.info.t.sweepAt(clock.now().UnixNano())
			}
			cpu.report(b)
			if p.Len() != n/2 {
				b.Fatalf("%d series after churn, want %d", p.Len(), n/2)
			}
		})
	}
	b.Run(fmt.Sprintf("series=%d/impl=client_golang", n), func(b *testing.B) {
		_, lines, bytes := fillClientGolang(n)
		i := 0
		cpu := startCPU(b)
		for b.Loop() {
			pod := churnPods[i%len(churnPods)]
			i++
			for j := range 8 {
				lines.WithLabelValues("ns-8", pod, churnCtrs[j/2], churnStreams[j%2]).Add(1)
				bytes.WithLabelValues("ns-8", pod, churnCtrs[j/2], churnStreams[j%2]).Add(100)
			}
			lines.DeletePartialMatch(prometheus.Labels{"namespace": "ns-8", "pod": pod})
			bytes.DeletePartialMatch(prometheus.Labels{"namespace": "ns-8", "pod": pod})
		}
		cpu.report(b)
	})
}

func (t *table[S, P]) sweepAt(now int64) {
	t.mu.Lock()
	t.sweepLocked(now)
	t.mu.Unlock()
}

// BenchmarkMemory reports the heap bytes per exposed sample held by n samples.
func BenchmarkMemory(b *testing.B) {
	for _, n := range benchSizes {
		for _, impl := range []string{"tailgate", "client_golang"} {
			b.Run(fmt.Sprintf("series=%d/impl=%s", n, impl), func(b *testing.B) {
				var perSample float64
				for b.Loop() {
					before := heapInUse()
					var keep any
					if impl == "tailgate" {
						p, _ := fillPodLogs(n)
						keep = p
					} else {
						reg, _, _ := fillClientGolang(n)
						keep = reg
					}
					perSample = float64(heapInUse()-before) / float64(n)
					runtime.KeepAlive(keep)
				}
				b.ReportMetric(perSample, "B/series")
			})
		}
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
