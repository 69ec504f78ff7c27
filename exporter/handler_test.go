package exporter

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailgate_sink_records_total", Help: "Records handled by a sink.",
	}, []string{"sink", "result"})
	reg.MustRegister(sent)
	sent.WithLabelValues("local", "sent").Add(42)
	pods := NewPodLogs()
	for i := range 2000 {
		pods.Acquire("ns", fmt.Sprint("pod-", i), "app", "stdout").Add(uint64(i), 10)
	}
	srv := httptest.NewServer(Handler(nil, reg, pods))
	defer srv.Close()

	tests := []struct {
		name, acceptEncoding string
		gzipped              bool
	}{
		{"plain", "", false},
		{"gzip", "gzip, deflate", true},
		{"gzip refused", "gzip;q=0, identity", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tc.acceptEncoding)
			}
			// A transport that does not add Accept-Encoding nor decompress on its own.
			resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ContentType {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzipped {
				t.Fatalf("Content-Encoding %q, want gzip=%v", resp.Header.Get("Content-Encoding"), tc.gzipped)
			}
			var body io.Reader = resp.Body
			if tc.gzipped {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			e := parseProm(t, b)
			if got := e.samples[seriesKey("tailgate_sink_records_total", "sink", "local", "result", "sent")]; got != 42 {
				t.Errorf("self metric = %v, want 42", got)
			}
			if got := e.samples[podKey(PodLogLinesName, "ns", "pod-1999", "app", "stdout")]; got != 1999 {
				t.Errorf("pod lines = %v, want 1999", got)
			}
			if len(e.samples) != 1+2*2000 {
				t.Errorf("%d samples, want %d", len(e.samples), 1+2*2000)
			}
			mfs := parseExpfmt(t, b)
			if len(mfs) != 3 {
				t.Errorf("%d families, want 3", len(mfs))
			}
		})
	}
}

func TestHandlerMethods(t *testing.T) {
	h := Handler(nil, nil, NewPodLogs())
	for _, tc := range []struct {
		method string
		status int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodHead, http.StatusOK},
		{http.MethodPost, http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/metrics", nil))
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.method, rec.Code, tc.status)
		}
	}
}

type failingGatherer struct{}

func (failingGatherer) Gather() ([]*dto.MetricFamily, error) {
	return nil, errors.New("collector broke")
}

// TestHandlerLogsThroughTheAgentsLogger: a gather error goes to the logger the agent passes (its
// JSON handler), not to slog.Default, and the scrape is still served.
func TestHandlerLogsThroughTheAgentsLogger(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	srv := httptest.NewServer(Handler(log, failingGatherer{}, NewPodLogs()))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %s", resp.Status)
	}
	if !strings.Contains(out.String(), `"component":"exporter"`) || !strings.Contains(out.String(), "collector broke") {
		t.Errorf("agent log = %q, want the gather error as JSON with component=exporter", out.String())
	}
}

// TestHandlerLargeGzip scrapes an exposition above parallelGzipMin: the first gzip scrape is
// compressed by the single-threaded writer, the next ones (the size is now known) in parallel
// blocks, and every one decompresses to the same bytes as the plain scrape.
func TestHandlerLargeGzip(t *testing.T) {
	pods := NewPodLogs()
	for i := range 15_000 {
		pods.Acquire("namespace-"+fmt.Sprint(i%40), fmt.Sprint("deployment-7d9f8b6c4-", i), "app", "stdout").Add(uint64(i), 10)
	}
	h := Handler(nil, nil, pods).(*handler)
	scrape := func(encoding string) []byte {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", encoding)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if encoding != "gzip" {
			return rec.Body.Bytes()
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		return b
	}
	plain := scrape("identity")
	if len(plain) < parallelGzipMin {
		t.Fatalf("exposition is %d bytes, want at least %d for the parallel path", len(plain), parallelGzipMin)
	}
	for i := range 3 {
		if got := scrape("gzip"); !bytes.Equal(got, plain) {
			t.Fatalf("gzip scrape %d: %d bytes differ from the %d-byte plain scrape", i, len(got), len(plain))
		}
	}
}

func TestHandlerGzipChoice(t *testing.T) {
	h := Handler(nil, nil).(*handler)
	f := func(lastSize int64, wantParallel bool) {
		t.Helper()
		h.lastSize.Store(lastSize)
		gz := h.gzipWriter(io.Discard)
		defer h.putGzipWriter(gz)
		if _, parallel := gz.(*pgzip.Writer); parallel != wantParallel {
			t.Errorf("last scrape %d bytes: parallel gzip %v, want %v", lastSize, parallel, wantParallel)
		}
	}
	multicore := runtime.GOMAXPROCS(0) > 1
	f(0, false)
	f(parallelGzipMin-1, false)
	f(parallelGzipMin, multicore)
	f(100<<20, multicore)
}

// failingResponse accepts limit body bytes, then fails every write: a scraper that went away.
type failingResponse struct {
	h     http.Header
	limit int
	n     int
}

func (f *failingResponse) Header() http.Header { return f.h }
func (f *failingResponse) WriteHeader(int)     {}
func (f *failingResponse) Write(b []byte) (int, error) {
	if f.n+len(b) > f.limit {
		return 0, errors.New("connection reset by peer")
	}
	f.n += len(b)
	return len(b), nil
}

// TestHandlerGzipScraperGone: a scraper that disconnects in the middle of a large gzip scrape
// (the parallel writer's path) costs a logged warning, not a hang or a panic, and the writers
// returned to the pools serve the next scrape whole.
func TestHandlerGzipScraperGone(t *testing.T) {
	pods := NewPodLogs()
	for i := range 15_000 {
		pods.Acquire("namespace-"+fmt.Sprint(i%40), fmt.Sprint("deployment-7d9f8b6c4-", i), "app", "stdout").Add(uint64(i), 10)
	}
	h := Handler(nil, nil, pods).(*handler)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	for _, limit := range []int{0, 100, 64 << 10, 300 << 10} {
		h.lastSize.Store(100 << 20) // a failed scrape counts less: take the parallel path each time
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(&failingResponse{h: http.Header{}, limit: limit}, req)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("scrape with the scraper gone after %d bytes did not return", limit)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip after failed scrapes: %v", err)
	}
	if e := parseProm(t, b); len(e.samples) != 2*15_000 {
		t.Fatalf("%d samples after failed scrapes, want %d", len(e.samples), 2*15_000)
	}
}
