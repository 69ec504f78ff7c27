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
		out = appendDone(out, j, done)
		if p == Alone {
			out = append(out, l)
		}
	}
	if done, ok := j.Flush(); ok {
		out = appendDone(out, j, done)
	}
	return out
}

// appendDone appends a finished record and the lines it released, in the order a caller
// emits them.
func appendDone(out []string, j *Joiner, d Done) []string {
	if d.Lines > 0 {
		out = append(out, string(d.Message))
	}
	for i := range d.Released {
		out = append(out, string(j.Released(i)))
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
	f := func(cfg Config, lines ...string) {
		t.Helper()
		rules, _ := Compile(cfg)
		j := NewJoiner(rules)
		var pre []State
		var firsts, before []int // line index of each First, records out before it
		n := 0
		for i, l := range lines {
			d, p := j.Feed([]byte(l))
			n += len(appendDone(nil, j, d))
			if p == First {
				firsts, pre, before = append(firsts, i), append(pre, j.Pre()), append(before, n)
			}
			if p == Alone {
				n++
			}
		}
		full := run(rules, lines)
		for k, i := range firsts {
			j := NewJoiner(rules)
			j.Resume(pre[k])
			got := run2(j, lines[i:])
			if want := full[before[k]:]; strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("resume at line %d (state %d): got %q want %q", i, pre[k], got, want)
			}
		}
	}
	f(Config{Detect: []string{"java"}, MaxLines: 2}, "java.lang.Error: x", "\tat a", "\tat b", "\tat c", "\tat d", "after")
	// Cuts that fall on tentative lines (a blank line that a chained traceback continues).
	for n := 1; n <= 6; n++ {
		f(Config{Detect: []string{"python", "node"}, MaxLines: n},
			"Traceback (most recent call last):", "  File \"a.py\", line 1, in <module>", "ValueError: bad", "",
			"During handling of the above exception, another exception occurred:", "",
			"Traceback (most recent call last):", "KeyError: 'k'", "", "log line",
			"/app/x.js:1", "throw e;", "^", "", "Error: boom", "    at f (/app/x.js:1:1)", "", "Node.js v20.11.0", "end")
	}
}

// TestTentative: lines that may end a trace or continue it are held tentatively; when the next
// line does not continue the trace they come out as records of their own, in order, after it.
func TestTentative(t *testing.T) {
	rules, _ := Compile(Config{Detect: []string{"all"}})
	f := func(lines []string, tentative []int, want ...string) {
		t.Helper()
		j := NewJoiner(rules)
		var got []string
		for i, l := range lines {
			d, p := j.Feed([]byte(l))
			got = appendDone(got, j, d)
			if p == Alone {
				got = append(got, l)
			}
			if n := j.Tentative(); n != tentative[i] {
				t.Errorf("after %q: %d lines tentative, want %d", l, n, tentative[i])
			}
		}
		if d, ok := j.Flush(); ok {
			got = appendDone(got, j, d)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("got %q\nwant %q", got, want)
		}
	}
	tb := []string{"Traceback (most recent call last):", "  File \"a.py\", line 1, in <module>", "ValueError: bad"}
	tbRec := strings.Join(tb, "\n")
	f(append(tb, "", "INFO next"), []int{0, 0, 0, 1, 0}, tbRec, "", "INFO next")
	f(append(tb, ""), []int{0, 0, 0, 1}, tbRec, "")
	f(append(tb, "", "", "x"), []int{0, 0, 0, 1, 0, 0}, tbRec, "", "", "x")
	f(append(tb, "", "The above exception was the direct cause of the following exception:", ""),
		[]int{0, 0, 0, 1, 0, 0}, tbRec+"\n\nThe above exception was the direct cause of the following exception:\n")
	// Node's preamble is tentative until its exception line.
	f([]string{"/app/x.js:3", "  foo();", "  ^", "", "ReferenceError: foo is not defined", "    at /app/x.js:3:3", "", "Node.js v22.1.0"},
		[]int{1, 2, 3, 4, 0, 0, 1, 0},
		"/app/x.js:3\n  foo();\n  ^\n\nReferenceError: foo is not defined\n    at /app/x.js:3:3\n\nNode.js v22.1.0")
	f([]string{"/app/x.js:3", "  foo();", "  ^", "", "plain"}, []int{1, 2, 3, 4, 0}, "/app/x.js:3", "  foo();", "  ^", "", "plain")
	// A line that starts a trace is not taken for Node's source line.
	f([]string{"/app/x.js:3", "java.lang.Error: x", "\tat a"}, []int{1, 0, 0}, "/app/x.js:3", "java.lang.Error: x\n\tat a")
	// Go: the blank line before a goroutine header.
	f([]string{"panic: boom", "", "goroutine 1 [running]:", "main.main()", "\t/app/main.go:5 +0x1d", "", "exit status 2"},
		[]int{0, 1, 0, 0, 0, 1, 0},
		"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5 +0x1d", "", "exit status 2")
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
