package tail

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// testInput builds an input over dir with short intervals; tweak may adjust cfg and the input.
func testInput(t *testing.T, cfg collector.InputConfig) *Input {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "pods"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = collector.Duration(10 * time.Millisecond)
	}
	in, err := New(cfg, "node-1", collector.NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	in.rotateWait = 50 * time.Millisecond
	return in
}

// start runs in until the returned stop is called; stop returns Run's error.
func start(t *testing.T, in *Input, em *fakeEmitter) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, em) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestGolden feeds each testdata/golden/*.log to the input as a pod log file and compares the
// records (stream, truncation flag, message, fields) with the .want file next to it.
func TestGolden(t *testing.T) {
	logs, _ := filepath.Glob("testdata/golden/*.log")
	if len(logs) == 0 {
		t.Fatal("no golden files")
	}
	for _, logPath := range logs {
		name := strings.TrimSuffix(filepath.Base(logPath), ".log")
		t.Run(name, func(t *testing.T) {
			want, opts, counts := readWant(t, strings.TrimSuffix(logPath, ".log")+".want")
			content, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			p := filepath.Join(dir, "pods", "shop_cart-1_uid-1", "app", "0.log")
			writeFile(t, p, string(content))
			cfg := collector.InputConfig{Paths: []string{filepath.Join(dir, "pods", "*", "*", "*.log")}}
			cfg.MaxLineBytes = collector.Size(atoi(t, opts["max_line_bytes"]))
			cfg.ParseJSON = opts["parse_json"] == "true"
			cfg.DetectLevel = opts["detect_level"] == "true"
			if d := opts["multiline"]; d != "" {
				cfg.Multiline.Detect = strings.Split(d, ",")
			}
			cfg.Multiline.Start = opts["ml_start"]
			cfg.Multiline.Continue = opts["ml_continue"]
			cfg.Multiline.MaxLines = atoi(t, opts["max_lines"])
			cfg.Multiline.MaxBytes = collector.Size(atoi(t, opts["max_bytes"]))
			// A trace that ends the file goes out after flush_after.
			cfg.Multiline.FlushAfter = collector.Duration(50 * time.Millisecond)
			in := testInput(t, cfg)
			in.readBuf = atoi(t, opts["read_buf"])
			em := newFakeEmitter(nil)
			stop := start(t, in, em)
			em.waitRecords(t, len(want))
			waitFor(t, "dropped and altered counts", func() bool {
				for k, n := range counts {
					if em.countFor(k) < n {
						return false
					}
				}
				return true
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := em.snapshot()
			if opts["order"] == "stream" {
				// Streams interleave: a held stderr trace goes out when its next line is read,
				// after the stdout lines in between. Compare each stream's order.
				slices.SortStableFunc(got, func(a, b gotRecord) int { return int(a.Stream) - int(b.Stream) })
			}
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for i, r := range got {
				if line := formatRecord(r); line != want[i] {
					t.Errorf("record %d:\n got %.200s\nwant %.200s", i, line, want[i])
				}
				if r.Kube.Namespace != "shop" || r.Kube.Pod != "cart-1" || r.Kube.PodUID != "uid-1" ||
					r.Kube.Container != "app" || r.Kube.Node != "node-1" {
					t.Errorf("record %d: kube %+v", i, r.Kube)
				}
				if r.Time == 0 {
					t.Errorf("record %d: no time", i)
				}
			}
			for k, n := range counts {
				if got := em.countFor(k); got != n {
					t.Errorf("%s %s = %d, want %d", k.kind, k.reason, got, n)
				}
			}
			// Altered records were delivered: counting them as dropped too would tell the
			// per-pod dropped series (and its alerts) of a loss that did not happen.
			for k := range counts {
				if k.kind == "altered" {
					if got := em.countFor(countKey{"dropped", k.reason}); got != 0 {
						t.Errorf("%s counted as dropped %d times, and as altered", k.reason, got)
					}
				}
			}
		})
	}
}

func formatRecord(r gotRecord) string {
	var b strings.Builder
	b.WriteString(r.Stream.String())
	if r.Flags&collector.FlagTruncated != 0 {
		b.WriteString(" T")
	}
	b.WriteString(" " + strconv.Quote(r.Message))
	switch r.Fields {
	case "":
	case r.Message:
		b.WriteString(" fields") // the message parsed as JSON
	default:
		b.WriteString(" fields=" + r.Fields)
	}
	return b.String()
}

// readWant reads a .want file: "# key=value ... dropped reason=n ..." then one record a line.
// readWant reads a .want file: "# " lines hold options (k=v) and, after the word "dropped" or
// "altered", the counts expected of that kind by reason; the other lines are the records.
func readWant(t *testing.T, path string) (want []string, opts map[string]string, counts map[countKey]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, counts = map[string]string{}, map[countKey]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kind := ""
			for _, w := range strings.Fields(rest) {
				if w == "dropped" || w == "altered" {
					kind = w
					continue
				}
				k, v, _ := strings.Cut(w, "=")
				if kind != "" {
					counts[countKey{kind, k}] = atoi(t, v)
				} else {
					opts[k] = v
				}
			}
			continue
		}
		// Normalise the quoting so the file may use any Go-compatible escapes.
		i := strings.IndexByte(line, '"')
		if i < 0 {
			t.Fatalf("%s: no quoted message in %q", path, line)
		}
		quoted, err := strconv.QuotedPrefix(line[i:])
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		msg, _ := strconv.Unquote(quoted)
		want = append(want, line[:i]+strconv.Quote(msg)+line[i+len(quoted):])
	}
	return want, opts, counts
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}
