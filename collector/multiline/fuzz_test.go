package multiline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzJoiner: whatever the lines, every line comes out exactly once and in order (records
// split back on '\n' give the input), no record passes max_lines, and Pre is always a state
// the rules accept.
func FuzzJoiner(f *testing.F) {
	files, _ := filepath.Glob("testdata/traces/*.txt")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b, uint8(0))
	}
	f.Add([]byte("BEGIN\n x\nTraceback (most recent call last):\n  File \"a\"\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, variant uint8) {
		cfg := Config{Detect: []string{"all"}, MaxLines: int(variant%7) + 1, MaxBytes: int(variant%5)*40 + 1}
		switch variant % 3 {
		case 1:
			cfg.Start = `^[A-Z]`
		case 2:
			cfg.Continue = `^\s`
		}
		rules, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		j := NewJoiner(rules)
		var out []string
		check := func(d Done) {
			if d.Lines == 0 {
				if len(d.Message) > 0 || d.Cut || d.Exception {
					t.Fatalf("empty record %q cut=%v exception=%v", d.Message, d.Cut, d.Exception)
				}
				out = appendDone(out, j, d)
				return
			}
			if d.Lines > rules.maxLines {
				t.Fatalf("record of %d lines > max_lines %d", d.Lines, rules.maxLines)
			}
			if n := bytes.Count(d.Message, []byte("\n")) + 1; n != d.Lines {
				t.Fatalf("record says %d lines, holds %d", d.Lines, n)
			}
			if n := d.Lines + d.Released; n > rules.maxLines {
				t.Fatalf("record of %d lines and %d released > max_lines %d", d.Lines, d.Released, rules.maxLines)
			}
			out = appendDone(out, j, d)
		}
		for _, l := range lines {
			done, p := j.Feed([]byte(l))
			if done.Lines > 0 || done.Released > 0 {
				check(done)
			}
			if p == Alone {
				out = append(out, l)
			}
			if !rules.Valid(j.Pre()) {
				t.Fatalf("Pre %d is not a valid state", j.Pre())
			}
		}
		if done, ok := j.Flush(); ok {
			check(done)
		}
		if got := strings.Join(out, "\n"); got != string(data) {
			t.Fatalf("lines lost or duplicated:\n got %q\nwant %q", got, data)
		}
	})
}
