package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/exporter"
)

// scrape reads /metrics with Prometheus' own text parser: name+labels -> value.
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
	out := map[string]float64{}
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("textparse: %v\n%s", err, body)
		}
		if et == textparse.EntrySeries {
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			out[l.String()] = v
		}
	}
}

func series(name string, kv ...string) string {
	return labels.FromStrings(append([]string{"__name__", name}, kv...)...).String()
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
	a, err := newAgent(context.Background(), &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	}()
	addr := a.MetricsAddr()
	sent := series("tailgate_sink_records_total", "sink", "local", "result", "sent")
	deadline := time.Now().Add(20 * time.Second)
	var m map[string]float64
	for {
		m = scrape(t, addr)
		if m[sent] == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent = %v, want 100", m[sent])
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
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
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
