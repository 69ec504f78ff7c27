package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/exporter"
	"github.com/tailgate-dev/tailgate/internal/exposition"
)

// scrape reads /metrics with Prometheus' own text parser: name+labels -> value. It fails on
// what a scraper would reject or mis-read: a family's HELP or TYPE twice, a series twice, or
// what client_golang's stricter parser refuses (a family's samples not grouped).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p, err := textparse.New(body, exporter.ContentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := tp.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
		t.Fatalf("expfmt: %v\n%s", err, body)
	}
	out := map[string]float64{}
	seen := map[string]bool{} // "HELP name", "TYPE name"
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("textparse: %v\n%s", err, body)
		}
		var meta string
		switch et {
		case textparse.EntryHelp:
			name, _ := p.Help()
			meta = "HELP " + string(name)
		case textparse.EntryType:
			name, _ := p.Type()
			meta = "TYPE " + string(name)
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			if _, dup := out[l.String()]; dup {
				t.Fatalf("series %s exposed twice", l.String())
			}
			out[l.String()] = v
		}
		if meta != "" {
			if seen[meta] {
				t.Fatalf("%s twice in one scrape", meta)
			}
			seen[meta] = true
		}
	}
}

func series(name string, kv ...string) string {
	return labels.FromStrings(append([]string{"__name__", name}, kv...)...).String()
}

// runAgentInProcess builds and runs the agent for cfg until the test ends, then stops it and
// expects a clean stop.
func runAgentInProcess(t *testing.T, cfg *collector.Config) *agent {
	t.Helper()
	a, err := newAgent(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	return a
}

// TestAgentMetricsAndHealth runs the agent in-process on a small pod log tree and checks the
// contract metric names with the values the pipeline must have reached.
func TestAgentMetricsAndHealth(t *testing.T) {
	dir := t.TempDir()
	podDir := filepath.Join(dir, "pods", "shop_cart-1_uid-1", "app")
	os.MkdirAll(podDir, 0o755)
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	var lines strings.Builder
	for i := 0; i < 100; i++ {
		stream := "stdout"
		if i%4 == 0 {
			stream = "stderr"
		}
		fmt.Fprintf(&lines, "2026-11-25T10:00:00.%09dZ %s F line %d\n", i, stream, i)
	}
	lines.WriteString("this is not a CRI line\n")
	os.WriteFile(filepath.Join(podDir, "0.log"), []byte(lines.String()), 0o644)
	os.Symlink(filepath.Join(podDir, "0.log"), filepath.Join(dir, "containers", "cart-1_shop_app-"+strings.Repeat("a", 64)+".log"))

	cfg := collector.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.Metrics.Listen = "n1", filepath.Join(dir, "data"), "127.0.0.1:0"
	cfg.Inputs = []collector.InputConfig{{Name: "pods", Type: "tail", Paths: []string{filepath.Join(dir, "containers", "*.log")}}}
	collector.ApplyInputDefaults(&cfg.Inputs[0])
	cfg.Sinks = []collector.SinkConfig{{Name: "local", Type: "file", Path: filepath.Join(dir, "out.jsonl")}}
	cfg.Metrics.PodResources.LogDir = filepath.Join(dir, "pods")
	a := runAgentInProcess(t, &cfg)
	addr := a.MetricsAddr()
	sent := series("tailgate_sink_records_total", "sink", "local", "result", "sent")
	ctr := func(name string) string {
		return series(name, "namespace", "shop", "pod", "cart-1", "container", "app")
	}
	size := float64(lines.Len())
	read := ctr("tailgate_pod_log_read_bytes_total")
	// The cursor moves just after the sent counter (the batch is counted, then its frames are
	// acknowledged): wait for both, so the buffer's age reads 0.
	oldest := series("tailgate_buffer_oldest_age_seconds", "sink", "local")
	deadline := time.Now().Add(20 * time.Second)
	var m map[string]float64
	for {
		m = scrape(t, addr)
		if age, ok := m[oldest]; m[sent] == 100 && m[read] == size && ok && age == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent = %v, want 100; read bytes = %v, want %v", m[sent], m[read], size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]float64{
		series("tailgate_input_records_total", "input", "pods"):                                                              100,
		series("tailgate_input_errors_total", "input", "pods", "reason", "garbage"):                                          1,
		series("tailgate_pod_log_lines_total", "namespace", "shop", "pod", "cart-1", "container", "app", "stream", "stdout"): 75,
		series("tailgate_pod_log_lines_total", "namespace", "shop", "pod", "cart-1", "container", "app", "stream", "stderr"): 25,
		series("tailgate_buffer_oldest_age_seconds", "sink", "local"):                                                        0,
		series("tailgate_tail_lag_bytes", "input", "pods"):                                                                   0,
		ctr("tailgate_pod_log_written_bytes_total"):                                                                          size,
		ctr("tailgate_pod_log_lag_bytes"):                                                                                    0,
		ctr("tailgate_pod_log_disk_bytes"):                                                                                   size,
		ctr("tailgate_pod_log_disk_files"):                                                                                   1,
		ctr("tailgate_pod_container_restarts"):                                                                               0,
		series("tailgate_exporter_series"):                                                                                   2*2 + 3 + 3, // two log streams, tail progress, disk
		series("tailgate_exporter_series_limit"):                                                                             100_000,
		series("tailgate_exporter_series_refused_total"):                                                                     0,
	}
	if _, ok := m[series("tailgate_pod_log_lines_total", "namespace", "shop", "pod", "cart-1", "container", "app", "stream", "app")]; ok {
		t.Error("a tailed container has an app stream series")
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if got := m[series("tailgate_buffer_max_bytes")]; got != float64(cfg.Buffer.MaxBytes) {
		t.Errorf("tailgate_buffer_max_bytes = %v, want %d", got, cfg.Buffer.MaxBytes)
	}
	b := currentBuild()
	if got := m[series("tailgate_build_info", "goversion", b.Go, "modified", "unknown", "revision", "unknown", "version", "dev")]; got != 1 {
		t.Errorf("tailgate_build_info for a test binary (no stamps) = %v, want 1", got)
	}
	if _, ok := m[series("tailgate_buffer_bytes")]; !ok {
		t.Error("tailgate_buffer_bytes missing")
	}
	if _, ok := m[series("tailgate_sink_request_duration_seconds_count", "sink", "local")]; !ok {
		t.Error("tailgate_sink_request_duration_seconds missing")
	}
	if _, ok := m[series("tailgate_buffer_syncs_total", "trigger", "interval")]; !ok {
		t.Error("tailgate_buffer_syncs_total missing")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, err, resp)
		}
	}
	// pprof is off unless metrics.pprof asks for it.
	if resp, err := http.Get("http://" + addr + "/debug/pprof/"); err != nil || resp.StatusCode != 404 {
		t.Errorf("/debug/pprof/ by default: %v %v, want 404", err, resp)
	}
}

// internal/exposition, which the deploy/ rules and dashboard tests check their metric names
// against, must know exactly the families the agent serves.
func TestExpositionNamesMatchTheAgent(t *testing.T) {
	dir := t.TempDir()
	cfg := collector.DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.Metrics.Listen = "n1", filepath.Join(dir, "data"), ""
	cfg.Inputs = []collector.InputConfig{{Name: "pods", Type: "tail", Paths: []string{filepath.Join(dir, "*.log")}}}
	collector.ApplyInputDefaults(&cfg.Inputs[0])
	cfg.Sinks = []collector.SinkConfig{{Name: "local", Type: "file", Path: filepath.Join(dir, "out.jsonl")}}
	a, err := newAgent(context.Background(), &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.pipeline.Stop(context.Background())
	got, err := exposition.Described(a.reg)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, a.pods.Families()...)
	slices.Sort(got)
	want, err := exposition.Agent()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the agent serves\n%v\ninternal/exposition knows\n%v", got, want)
	}
}
