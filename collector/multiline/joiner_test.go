package multiline

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTraces feeds each testdata/traces/*.txt to a Joiner and checks the records. A file
// starts with "# key=value ..." (detect=a,b start=RE continue=RE max_lines=N); then every
// line outside a ">>>" ... "<<<" block must come out as a record of its own, and the lines
// of a block as one record. The traces are written by hand after the runtimes' formats.
func TestTraces(t *testing.T) {
	files, _ := filepath.Glob("testdata/traces/*.txt")
	if len(files) == 0 {
		t.Fatal("no trace files")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cfg, lines, want := readTraceFile(t, path)
			rules, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := run(rules, lines)
			if len(got) != len(want) {
				t.Errorf("got %d records, want %d", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("record %d:\n got %q\nwant %q", i, got[i], want[i])
				}
			}
		})
	}
}

// run feeds lines and returns the records in emission order (the held one flushed at the end).
func run(rules *Rules, lines []string) []string { return run2(NewJoiner(rules), lines) }

// run2 is run on a given joiner.
func run2(j *Joiner, lines []string) []string {
	var out []string
	for _, l := range lines {
		done, p := j.Feed([]byte(l))
		if done.Lines > 0 {
			out = append(out, string(done.Message))
		}
		if p == Alone {
			out = append(out, l)
		}
	}
	if done, ok := j.Flush(); ok {
		out = append(out, string(done.Message))
	}
	return out
}

func readTraceFile(t *testing.T, path string) (Config, []string, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cfg Config
	var lines, want, block []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# ") && len(lines) == 0 && cfg.FlushAfter == 0:
			for _, kv := range strings.Fields(l[2:]) {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "detect":
					cfg.Detect = strings.Split(v, ",")
				case "start":
					cfg.Start = v
				case "continue":
					cfg.Continue = v
				default:
					t.Fatalf("%s: unknown key %q", path, k)
				}
			}
			cfg.FlushAfter = time.Second
		case l == ">>>":
			inBlock, block = true, nil
		case l == "<<<":
			inBlock = false
			want = append(want, strings.Join(block, "\n"))
		case inBlock:
			lines, block = append(lines, l), append(block, l)
		default:
			lines, want = append(lines, l), append(want, l)
		}
	}
	return cfg, lines, want
}

func TestLimits(t *testing.T) {
	rules, err := Compile(Config{Detect: []string{"java"}, MaxLines: 3, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	j := NewJoiner(rules)
	lines := []string{"java.lang.Error: deep", "\tat a", "\tat b", "\tat c", "\tat d", "\tat e", "\tat f", "\tat g", "next"}
	var got []Done
	var msgs []string
	for _, l := range lines {
		d, p := j.Feed([]byte(l))
		if d.Lines > 0 {
			got, msgs = append(got, d), append(msgs, string(d.Message))
		}
		if p == Alone {
			msgs = append(msgs, l)
		}
	}
	want := []string{"java.lang.Error: deep\n\tat a\n\tat b", "\tat c\n\tat d\n\tat e", "\tat f\n\tat g", "next"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", msgs, want)
	}
	for i, d := range got {
		if !d.Cut {
			t.Errorf("part %d not flagged cut", i)
		}
		if !d.Exception {
			t.Errorf("part %d not flagged exception", i)
		}
	}

	rules, _ = Compile(Config{Start: "^S", MaxBytes: 10})
	if got := strings.Join(run(rules, []string{"S12345", "abcd", "efgh", "S"}), "|"); got != "S12345|abcd\nefgh|S" {
		t.Fatalf("max_bytes: got %q", got)
	}
}

// TestResume: a joiner resumed in the state saved before a cut part joins the rest the same
// way, so a restart in the middle of a long trace yields the same records.
func TestResume(t *testing.T) {
	rules, _ := Compile(Config{Detect: []string{"java"}, MaxLines: 2})
	lines := []string{"java.lang.Error: x", "\tat a", "\tat b", "\tat c", "\tat d", "after"}
	j := NewJoiner(rules)
	var pre []State
	var firsts []int
	for i, l := range lines {
		_, p := j.Feed([]byte(l))
		if p == First {
			firsts, pre = append(firsts, i), append(pre, j.Pre())
		}
	}
	full := run(rules, lines)
	for k, i := range firsts {
		j := NewJoiner(rules)
		j.Resume(pre[k])
		got := run2(j, lines[i:])
		if want := full[k:]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("resume at line %d (state %d): got %q want %q", i, pre[k], got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	f := func(cfg Config, want string) {
		t.Helper()
		_, err := Compile(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%+v) = %v, want an error containing %q", cfg, err, want)
		}
	}
	f(Config{Detect: []string{"cobol"}}, `unknown language "cobol"`)
	f(Config{Start: "("}, "multiline.start")
	f(Config{Continue: "[a-"}, "multiline.continue")
	f(Config{Detect: []string{"go"}, MaxLines: -1}, "negative")
	if r, err := Compile(Config{}); r != nil || err != nil {
		t.Errorf("empty config: %v %v", r, err)
	}
}

func TestFirstBytes(t *testing.T) {
	f := func(expr string, yes, no string) {
		t.Helper()
		m, err := compileMatcher(expr)
		if err != nil {
			t.Fatal(err)
		}
		if m.first == nil {
			if no != "" {
				t.Errorf("%s: no first-byte test", expr)
			}
			return
		}
		for _, c := range []byte(yes) {
			if !m.first[c] {
				t.Errorf("%s: %q ruled out", expr, c)
			}
		}
		for _, c := range []byte(no) {
			if m.first[c] {
				t.Errorf("%s: %q not ruled out", expr, c)
			}
		}
	}
	f(`^\d{4}-`, "0123456789", "a -[{")
	f(`^\s+at `, " \t", "a0")
	f(`^(?i)error`, "eE", "rx")
	f(`^(ERROR|WARN)`, "EW", "IDw")
	f(`^[\[{]`, "[{", "a")
	f(`^a?b`, "ab", "c")
	f(`foo`, "", "")   // not anchored
	f(`^.x`, "", "")   // any byte
	f(`^\s*$`, "", "") // can match empty
	f(`^(a|)b`, "ab", "c")
	// The test must never rule out a line the expression matches.
	for _, c := range []struct{ expr, line string }{
		{`^(?i)k`, "\u212a"}, {`^é`, "é"}, {`^[α-ω]`, "β"}, {`^\d{4}-`, "2026-"},
	} {
		m, _ := compileMatcher(c.expr)
		if !m.match([]byte(c.line)) {
			t.Errorf("%s does not match %q through the matcher", c.expr, c.line)
		}
	}
}
