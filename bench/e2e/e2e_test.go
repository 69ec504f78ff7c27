package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/bench/internal/procstat"
)

// writeTree lays out a tiny node log tree with its manifest, as bench/gen would.
func writeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	type file struct{ ns, pod, ctr, body string }
	files := []file{
		{"shop", "cart-1", "app", "" +
			"2026-11-23T03:00:00.000000001Z stdout F {\"level\":\"info\",\"msg\":\"a\"}\n" +
			"2026-11-23T03:00:00.000000002Z stderr P {\"level\":\"error\",\"stack\":\"part one \n" +
			"2026-11-23T03:00:00.000000002Z stderr F and two\"}\n"},
		{"kube-system", "coredns-1", "coredns", "" +
			`{"log":"{\"level\":\"info\",\"msg\":\"b\"}\n","stream":"stdout","time":"2026-11-23T03:00:00Z"}` + "\n" +
			`{"log":"{\"msg\":\"long ","stream":"stdout","time":"2026-11-23T03:00:01Z"}` + "\n" +
			`{"log":"tail\"}\n","stream":"stdout","time":"2026-11-23T03:00:01Z"}` + "\n"},
	}
	m := map[string]any{"format": "mixed", "payload": "json", "total_files": len(files),
		"total_records": 4, "total_lines": 6}
	var entries []map[string]any
	var total int
	for i, f := range files {
		path := filepath.Join(root, "pods", f.ns+"_"+f.pod+"_uid", f.ctr, "0.log")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(root, "containers", f.pod+"_"+f.ns+"_"+f.ctr+"-"+strings.Repeat(string('a'+rune(i)), 64)+".log")
		os.MkdirAll(filepath.Dir(link), 0o755)
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, map[string]any{"path": path})
		total += len(f.body)
	}
	m["files"], m["total_bytes"] = entries, total
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(root, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func testOptions(t *testing.T, env ...string) options {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return options{Bin: bin, Data: writeTree(t), Runs: 2, Timeout: 30 * time.Second, Label: "fake",
		Results: filepath.Join(t.TempDir(), "results.jsonl"), WorkDir: t.TempDir(), Keep: true,
		Env: append([]string{"E2E_FAKE_TAILGATE=1"}, env...), Poll: 10 * time.Millisecond}
}

func TestHarnessAgainstFake(t *testing.T) {
	o := testOptions(t)
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Results)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d result lines, want 2", len(lines))
	}
	for _, l := range lines {
		var r result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.RecordsOut != 4 || r.RecordsSent != 4 || r.ExitCode != 0 || r.WallSeconds <= 0 || r.PeakRSSMiB <= 0 {
			t.Errorf("run %+v", r)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(o.WorkDir, "run-1", "tailgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"read_from: head", "format: auto", "sync: 200ms", "type: file", "listen: \"127.0.0.1:", "/containers/*.log"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestHarnessReportsFailures(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want string
	}{
		{"a record lost", "E2E_FAKE_DROP=2", "timed out"},
		{"binary exits early", "E2E_FAKE_EXIT=1", "exited before"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, tc.env)
			o.Runs, o.Timeout = 1, time.Second
			rs, err := bench(context.Background(), o, os.Stderr)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].OK || !strings.Contains(rs[0].Error, tc.want) {
				t.Fatalf("results %+v, want a failed run mentioning %q", rs, tc.want)
			}
			if md := markdown("fake", rs); !strings.Contains(md, "**no**") || strings.Contains(md, "median") {
				t.Errorf("table:\n%s", md)
			}
		})
	}
}

func TestCheckOutput(t *testing.T) {
	f := func(body string, wantJSON bool, want outputCheck) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "out.jsonl")
		os.WriteFile(path, []byte(body), 0o644)
		got, err := checkOutput(path, wantJSON)
		got.FirstError = ""
		if err != nil || got != want {
			t.Errorf("checkOutput(%q) = %+v, %v; want %+v", body, got, err, want)
		}
	}
	f(`{"message":"{\"a\":1}"}`+"\n", true, outputCheck{Records: 1})
	f(`{"message":"{\"a\":"}`+"\n", true, outputCheck{Records: 1, BadMessages: 1})
	f(`{"message":"plain"}`+"\n", false, outputCheck{Records: 1})
	f(`{"msg":"x"}`+"\nnot json\n", false, outputCheck{Records: 2, BadLines: 2})
	f("", true, outputCheck{})
}

func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	if cpu, err := procstat.CPUSeconds(pid); err != nil || cpu < 0 {
		t.Errorf("cpuSeconds = %v, %v", cpu, err)
	}
	if rss, err := procstat.PeakRSSMiB(pid); err != nil || rss <= 0 {
		t.Errorf("peakRSSMiB = %v, %v", rss, err)
	}
}

func TestMedian(t *testing.T) {
	rs := []result{{WallSeconds: 3}, {WallSeconds: 1}, {WallSeconds: 2}, {WallSeconds: 10}}
	wall := func(r result) float64 { return r.WallSeconds }
	if got := median(rs, wall); got != 2.5 {
		t.Errorf("median of 4 = %v", got)
	}
	if got := median(rs[:3], wall); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
}
