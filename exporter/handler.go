package exporter

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/tailgate-dev/tailgate/internal/ratelog"
)

// ContentType is the text exposition format the handler serves.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves /metrics: g's families (client_golang self metrics, may be nil) in the text
// format, then each extra writer's output (e.g. a *Pods), gzip-compressed when the scraper
// accepts it. A gather error is logged to log (the agent's handler; nil discards) at most once
// a minute, and the families that were gathered are still served.
//
// gzip is klauspost/compress at level 1: 2x faster than the standard library's level 1 and
// 10x faster than its default (promhttp's) on this exposition, for 2% more bytes than the
// former (BenchmarkGzipLevels). A large exposition (the previous scrape was at least
// parallelGzipMin bytes, about 20k series) is compressed by klauspost/pgzip instead, in 1 MiB
// blocks on up to GOMAXPROCS cores while the next block renders: same level, same bytes give
// or take 0.1%, a third less wall time at 100k series for ~13% more CPU
// (BenchmarkScrapeHTTPGzip). That is the scrape latency Prometheus sees; with one core
// (GOMAXPROCS 1, e.g. a CPU limit under 2) it is never chosen.
//
// Only the text format is served: Prometheus asks for OpenMetrics first by default, and parses
// it no faster than this text at 100k series; protobuf parses ~19% faster but is asked for
// only by scrapers configured proto-first (BenchmarkScraperParse, bench/RESULTS.md), which
// does not pay for a second renderer and its label copies.
func Handler(log *slog.Logger, g prometheus.Gatherer, extra ...io.WriterTo) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{gatherer: g, extra: extra,
		warns: ratelog.New(log.With("component", "exporter"), time.Minute)}
}

type handler struct {
	gatherer prometheus.Gatherer
	extra    []io.WriterTo
	warns    *ratelog.Limiter

	gzips  sync.Pool // *gzip.Writer
	pgzips sync.Pool // *pgzip.Writer
	bufs   sync.Pool // *bufio.Writer

	// lastSize is the uncompressed size of the last complete scrape: it picks the compressor
	// of the next one.
	lastSize atomic.Int64
}

// parallelGzipMin is the exposition size from which the parallel compressor pays: below two
// of its 1 MiB blocks there is nothing to run side by side.
const parallelGzipMin = 2 << 20

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Add("Vary", "Accept-Encoding")
	if r.Method == http.MethodHead {
		return
	}

	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := h.gzipWriter(w)
		defer func() {
			if err := gz.Close(); err != nil {
				h.warn("close gzip stream", err)
			}
			h.putGzipWriter(gz)
		}()
		out = gz
	}
	counted := &countingWriter{w: out}
	out = counted
	defer func() { h.lastSize.Store(counted.n) }()
	bw, _ := h.bufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(out, 64<<10)
	} else {
		bw.Reset(out)
	}
	defer h.bufs.Put(bw)

	if err := h.write(bw); err != nil {
		h.warn("write scrape", err)
		return
	}
	if err := bw.Flush(); err != nil {
		h.warn("write scrape", err)
	}
}

// gzipWriter returns a pooled gzip stream to w: pgzip when the last scrape was large and there
// is more than one core, klauspost's single-threaded writer otherwise.
func (h *handler) gzipWriter(w io.Writer) io.WriteCloser {
	if h.lastSize.Load() >= parallelGzipMin && runtime.GOMAXPROCS(0) > 1 {
		if gz, _ := h.pgzips.Get().(*pgzip.Writer); gz != nil {
			gz.Reset(w)
			return gz
		}
		gz, _ := pgzip.NewWriterLevel(w, pgzip.BestSpeed) // level is valid: no error
		return gz
	}
	if gz, _ := h.gzips.Get().(*gzip.Writer); gz != nil {
		gz.Reset(w)
		return gz
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // level is valid: no error
	return gz
}

func (h *handler) putGzipWriter(gz io.WriteCloser) {
	switch gz := gz.(type) {
	case *pgzip.Writer:
		gz.Reset(io.Discard) // drop the reference to the response; keeps the block buffers
		h.pgzips.Put(gz)
	case *gzip.Writer:
		h.gzips.Put(gz)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (h *handler) write(w io.Writer) error {
	if h.gatherer != nil {
		mfs, err := h.gatherer.Gather()
		if err != nil {
			h.warn("gather self metrics", err)
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
				return err
			}
		}
	}
	for _, x := range h.extra {
		if _, err := x.WriteTo(w); err != nil {
			return err
		}
	}
	return nil
}

// warn logs at most one line a minute per message, with the count of the ones it held back.
func (h *handler) warn(msg string, err error) { h.warns.Warn(msg, msg, "err", err) }

// acceptsGzip reports whether an Accept-Encoding header allows gzip (explicitly or by "*")
// with a non-zero quality.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		if q, ok := qValue(params); ok && q == 0 {
			continue
		}
		return true
	}
	return false
}

func qValue(params string) (float64, bool) {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, true // a malformed q is not an acceptance
		}
		return q, true
	}
	return 1, false
}
