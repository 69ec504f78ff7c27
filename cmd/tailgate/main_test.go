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

// TestHelpAndUsageErrors: --help is a success with the usage on stdout; a bad flag, a stray
// argument or a missing subcommand is exit 2 with the usage on stderr, as Go's flag package
// does for a program.
func TestHelpAndUsageErrors(t *testing.T) {
	for _, cmd := range [][]string{
		{"run"}, {"check"}, {"demo"}, {"buffer", "inspect"}, {"bigquery", "setup"}, {"bigquery", "load"},
		{"deadletter", "list"}, {"deadletter", "replay"},
	} {
		name := strings.Join(cmd, " ")
		code, out, errOut := runCLI(t, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "usage: tailgate "+name) {
			t.Errorf("%s --help: code %d, stdout %q, stderr %q", name, code, out, errOut)
		}
		code, _, errOut = runCLI(t, append(cmd, "--no-such-flag")...)
		if code != 2 || !strings.Contains(errOut, "no-such-flag") || !strings.Contains(errOut, "usage: tailgate "+name) {
			t.Errorf("%s --no-such-flag: code %d, stderr %q", name, code, errOut)
		}
	}
	for _, cmd := range [][]string{{"bigquery"}, {"buffer"}, {"deadletter"}, {"deadletter", "frob"}, {"check"}, {"check", "--config", "x", "extra"}} {
		if code, _, errOut := runCLI(t, cmd...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: code %d, stderr %q; want 2 with the usage", cmd, code, errOut)
		}
	}
	for _, cmd := range [][]string{{"bigquery", "--help"}, {"buffer", "--help"}, {"deadletter", "--help"}, {"--help"}} {
		if code, out, _ := runCLI(t, cmd...); code != 0 || !strings.Contains(out, "usage") {
			t.Errorf("%v: code %d, stdout %q", cmd, code, out)
		}
	}
}

// TestCheckAndRunAgree: every config in testdata is judged the same by check and by run's
// loading (check only adds the path checks), against the one list of sink types this binary
// builds: a sink type it does not build fails both, at its line.
func TestCheckAndRunAgree(t *testing.T) {
	files, _ := filepath.Glob("../../collector/testdata/config/*.yaml")
	more, _ := filepath.Glob("testdata/config/*.yaml")
	files = append(files, more...)
	if len(files) < 4 {
		t.Fatalf("only %d testdata configs found", len(files))
	}
	for _, f := range files {
		code, _, checkErr := runCLI(t, "check", "--config", f)
		_, runErr := loadConfig(f, false)
		switch {
		case runErr == nil && code != 0:
			// Only path checks may fail check alone.
			for _, line := range strings.Split(strings.TrimSpace(checkErr), "\n") {
				if !strings.Contains(line, "directory") && !strings.Contains(line, "no such file") && !strings.Contains(line, "not a directory") {
					t.Errorf("%s: run accepts it but check says %q", f, line)
				}
			}
		case runErr != nil:
			if code == 0 {
				t.Errorf("%s: check passes, run fails with %v", f, runErr)
			}
			for _, line := range strings.Split(runErr.Error(), "\n") {
				if !strings.Contains(checkErr, line) {
					t.Errorf("%s: run fails with %q, which check does not report:\n%s", f, line, checkErr)
				}
			}
		}
	}
}

func TestCheckBuiltSinkTypesAndGlobs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pods"), 0o755)
	// runToo: run must refuse the config the same way (not for path problems: only check looks
	// at paths, and run would start).
	f := func(name, body string, wantCode int, want string, runToo bool) {
		t.Helper()
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte("data_dir: "+dir+"/data\n"+body), 0o644)
		code, out, errOut := runCLI(t, "check", "--config", p)
		if code != wantCode || !strings.Contains(out+errOut, want) {
			t.Errorf("%s: code %d, out %q, err %q; want code %d and %q", name, code, out, errOut, wantCode, want)
		}
		if runToo {
			if rc, _, runErr := runCLI(t, "run", "--config", p); rc != 1 || !strings.Contains(runErr, want) {
				t.Errorf("%s: run exited %d with %q; want 1 and %q", name, rc, runErr, want)
			}
		}
	}
	tail := "inputs:\n  - {name: p, type: tail, paths: [\"" + dir + "/pods/*/*/*.log\"]}\n"
	f("glob", tail+"sinks:\n  - {name: s, type: file, path: "+dir+"/out.jsonl}\n", 0, "ok", false)
	f("missing-base", "inputs:\n  - {name: p, type: tail, paths: [\""+dir+"/nope/*/*.log\"]}\nsinks:\n  - {name: s, type: stdout}\n", 1, "nope", false)
	f("unbuilt", tail+"sinks:\n  - {name: s, type: stdout}\n  - {name: x, type: made_up}\n", 1, `type "made_up" is not one of`, true)
	f("bad-pubsub", tail+"sinks:\n  - {name: ps, type: pubsub, project: p, topic: t, ordering_key: \"{nope}\"}\n", 1, `:5: sink "ps"`, true)
	f("labels-without-watch", tail+"kubernetes: {enabled: false}\nroutes:\n  - {match: {labels: {app: cart}}, sinks: [s]}\nsinks:\n  - {name: s, type: stdout}\n", 1, "pod labels come from the Kubernetes watch", true)
}
