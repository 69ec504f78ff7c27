package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/tailgate-dev/tailgate/collector"
)

// TestAgentFiltersRedactMultiline runs the agent in-process with a tail input (multiline,
// level detection, filters, redact) and a forward input (filters, redact) from one config
// file, sends through a real fluent-logger client, and checks the file sink's envelopes and
// the per-reason counters.
func TestAgentFiltersRedactMultiline(t *testing.T) {
	dir := t.TempDir()
	podDir := filepath.Join(dir, "pods", "shop_cart-1_uid-1", "app")
	os.MkdirAll(podDir, 0o755)
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	var b strings.Builder
	for _, l := range []struct{ stream, msg string }{
		{"stdout", "GET /healthz 200"},
		{"stdout", "INFO login password=hunter2 ok"},
		{"stderr", "java.lang.IllegalStateException: boom"},
		{"stdout", "GET /healthz 200"},
		{"stderr", "\tat com.example.A.run(A.java:1)"},
		{"stderr", "\t... 3 more"},
		{"stderr", "WARN retrying"},
	} {
		fmt.Fprintf(&b, "2026-11-25T10:00:00.000000001Z %s F %s\n", l.stream, l.msg)
	}
	os.WriteFile(filepath.Join(podDir, "0.log"), []byte(b.String()), 0o644)
	os.Symlink(filepath.Join(podDir, "0.log"), filepath.Join(dir, "containers", "cart-1_shop_app-"+strings.Repeat("a", 64)+".log"))
	port := freePort(t)
	out := filepath.Join(dir, "out.jsonl")
	yaml := fmt.Sprintf(`node_name: n1
data_dir: %[1]s/data
metrics: {listen: "127.0.0.1:0"}
kubernetes: {enabled: false}
inputs:
  - name: pods
    type: tail
    paths: ["%[1]s/containers/*.log"]
    poll_interval: 20ms
    detect_level: true
    multiline: {detect: [java], flush_after: 100ms}
    filters:
      - {action: drop, message: '^GET /healthz'}
    redact:
      - {pattern: '(password|token)=[^\s",]+', replacement: '$1=***'}
  - name: apps
    type: forward
    listen: 127.0.0.1:%[2]d
    filters:
      - {action: drop, message: '^GET /healthz', reason: healthcheck}
    redact:
      - {pattern: '(password|token)=[^\s",]+', replacement: '$1=***', reason: credentials}
sinks:
  - {name: local, type: file, path: %[3]s}
`, dir, port, out)
	cfg, err := collector.ParseConfig("tailgate.yaml", []byte(yaml), collector.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := runAgentInProcess(t, cfg)
	var fl *fluent.Fluent
	deadline := time.Now().Add(20 * time.Second)
	for {
		fl, err = fluent.New(fluent.Config{FluentHost: "127.0.0.1", FluentPort: port, Timeout: time.Second, MaxRetry: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer fl.Close()
	for _, m := range []string{"GET /healthz 200", "user token=abc123 signed in"} {
		if err := fl.Post("app.web", map[string]string{"message": m}); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]string{ // message -> fields
		"INFO login password=*** ok": `{"level":"info"}`,
		"java.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:1)\n\t... 3 more": `{"level":"error"}`,
		"WARN retrying":            `{"level":"warning"}`,
		"user token=*** signed in": `{"message":"user token=*** signed in"}`,
	}
	var got []forwardEnvelope
	for deadline := time.Now().Add(20 * time.Second); ; {
		got = readForwardOut(t, out)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		w, ok := want[r.Message]
		if !ok {
			t.Errorf("unexpected record %q", r.Message)
			continue
		}
		if f := jsonOf(t, r.Fields); f != w {
			t.Errorf("%q: fields %s, want %s", r.Message, f, w)
		}
	}
	m := scrape(t, a.MetricsAddr())
	for k, v := range map[string]float64{
		series("tailgate_pod_log_dropped_total", "namespace", "shop", "pod", "cart-1", "container", "app", "stream", "stdout", "reason", "filtered"): 2,
		series("tailgate_input_errors_total", "input", "pods", "reason", "filtered"):                                                                 2,
		series("tailgate_input_errors_total", "input", "apps", "reason", "healthcheck"):                                                              1,
		series("tailgate_input_redactions_total", "input", "pods", "reason", "redact"):                                                               1,
		series("tailgate_input_redactions_total", "input", "apps", "reason", "credentials"):                                                          2,
	} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func jsonOf(t *testing.T, v map[string]any) string {
	t.Helper()
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
