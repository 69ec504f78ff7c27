package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the tailgate binary for subprocess tests.
func TestMain(m *testing.M) {
	if os.Getenv("TAILGATE_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "tailgate ") {
		t.Errorf("version: code %d, out %q", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("unknown command: code %d, stderr %q", code, errOut)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data_dir: "+dir+"\ninputs:\n  - {name: p, type: tail, paths: [\""+dir+"/*.log\"], format: syslog}\nsinks:\n  - {name: s, type: file}\n"), 0o644)
	code, _, errOut := runCLI(t, "check", "--config", bad)
	if code != 1 {
		t.Errorf("check of a bad config exited %d", code)
	}
	for _, want := range []string{bad + `:3: input "p": format "syslog"`, bad + `:5: sink "s": path is required`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check output\n%s\nlacks %q", errOut, want)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("data_dir: "+dir+"/data\ninputs:\n  - {name: p, type: tail, paths: [\""+dir+"/*.log\"]}\nsinks:\n  - {name: s, type: file, path: "+dir+"/out.jsonl}\n"), 0o644)
	if code, out, errOut := runCLI(t, "check", "--config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check of a good config: code %d, out %q, err %q", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "run", "--config", bad); code != 1 {
		t.Errorf("run with a bad config exited %d, want 1", code)
	}
}

// TestDemo runs the newcomer's first command and checks that every generated record arrives
// exactly once, as a complete envelope, and that the buffer can be inspected afterwards.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "demo", "--duration", "3s", "--rate", "3000", "--dir", dir, "--metrics-listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if p := regexp.MustCompile(`published (\d+) records to Pub/Sub`).FindStringSubmatch(out); p == nil || !strings.Contains(out, "generated "+p[1]+" records") {
		t.Errorf("the in-process Pub/Sub fake did not get every record:\n%s", out)
	}
	m := regexp.MustCompile(`generated (\d+) records \((\d+) rotations\), delivered (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final summary in:\n%s", out)
	}
	generated, _ := strconv.Atoi(m[1])
	delivered, _ := strconv.Atoi(m[3])
	if generated == 0 || generated != delivered {
		t.Fatalf("generated %d, delivered %d\n%s", generated, delivered, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != generated {
		t.Fatalf("out.jsonl has %d lines, want %d", len(lines), generated)
	}
	ids := map[string]bool{}
	seqs := map[float64]bool{}
	for i, l := range lines {
		var env struct {
			ID, Time, Stream, Message, Source string
			Kubernetes                        struct{ Namespace, Pod, Container, Node string }
			Fields                            map[string]any
		}
		if err := json.Unmarshal(l, &env); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		if ids[env.ID] {
			t.Fatalf("line %d: duplicate id %s", i, env.ID)
		}
		ids[env.ID] = true
		if env.Source != "pods" || env.Kubernetes.Namespace == "" || env.Kubernetes.Pod == "" || env.Kubernetes.Node != "demo-node" || (env.Stream != "stdout" && env.Stream != "stderr") {
			t.Fatalf("line %d: incomplete envelope %s", i, l)
		}
		seq, ok := env.Fields["seq"].(float64)
		if !ok {
			t.Fatalf("line %d: message not parsed into fields (a mis-joined partial?): %.200s", i, l)
		}
		seqs[seq] = true
	}
	for s := 0; s < generated; s++ {
		if !seqs[float64(s)] {
			t.Fatalf("record seq %d missing", s)
		}
	}
	code, out, errOut = runCLI(t, "buffer", "inspect", "--data-dir", filepath.Join(dir, "data"))
	if code != 0 || !strings.Contains(out, "local") {
		t.Errorf("buffer inspect: code %d\n%s\n%s", code, out, errOut)
	}
}
