package tail

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// FuzzCRILine: parseCRI never panics, and what it accepts is a timestamp, a stream and a tag
// followed by the message, which is the tail of the line.
func FuzzCRILine(f *testing.F) {
	f.Add([]byte("2016-10-06T00:17:09.669794202Z stdout F the message"))
	f.Add([]byte("2016-10-06T00:17:09.669794202+09:00 stderr P part"))
	f.Fuzz(func(t *testing.T, line []byte) {
		c, ok := parseCRI(line)
		if !ok {
			return
		}
		if !bytes.HasSuffix(line, c.Message) {
			t.Fatalf("message %q is not the tail of %q", c.Message, line)
		}
		if c.Stream.String() != "stdout" && c.Stream.String() != "stderr" {
			t.Fatalf("stream %v", c.Stream)
		}
	})
}

// FuzzDockerLine: the docker parser never panics and, for valid UTF-8 input without raw control
// characters (which it accepts in strings, to deliver rather than drop), agrees with
// encoding/json on the log value.
func FuzzDockerLine(f *testing.F) {
	f.Add([]byte(`{"log":"msg\n","stream":"stderr","time":"2019-01-01T11:11:11.111111111Z"}`))
	f.Add([]byte(`{"log":"\ud83d\ude00 \u00e9\t","stream":"stdout","time":"2019-01-01T11:11:11Z","attrs":{"a":[1]}}`))
	var p dockerParser
	f.Fuzz(func(t *testing.T, line []byte) {
		c, ok := p.parse(line)
		// Any byte below 0x20 is skipped: raw tabs or newlines inside a string are invalid JSON
		// that the parser delivers anyway, and outside strings they are rare in docker's output.
		if !ok || !utf8.Valid(line) || bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 }) {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", line, err)
		}
		want, _ := m["log"].(string)
		got := string(c.Message)
		if !c.Partial {
			got += "\n"
		}
		if got != want {
			t.Fatalf("log of %q: got %q, want %q", line, got, want)
		}
		if isJSONObject(line) != json.Valid(line) {
			t.Fatalf("isJSONObject(%q) disagrees with json.Valid", line)
		}
	})
}

// FuzzMultilineStage drives a reader's per-line path with multiline on (every built-in
// detector and a custom rule) over arbitrary interleavings of stdout and stderr lines and
// partial chunks: whatever the input, every logical line comes out exactly once, in its
// stream's order, inside exactly one record, and no two records share an id.
func FuzzMultilineStage(f *testing.F) {
	f.Add([]byte("0Fjava.lang.Error: x\n1Fhello\n0F\tat a.B(C.java:1)\n0PTraceback (most \n0Frecent call last):\n1Fpanic: x\n0Fdone\n"), uint8(1))
	f.Add([]byte("0FTraceback (most recent call last):\n0F  File \"a.py\", line 1, in <module>\n0F    x()\n0FValueError: v\n"), uint8(0))
	f.Add([]byte("1Fpanic: boom\n1F\n1Fgoroutine 1 [running]:\n1Fmain.main()\n1F\t/a.go:1 +0x1\n0P{\"a\":\n0F1}\n"), uint8(2))
	// Tentative lines: a chained traceback, a blank line that ends a trace, Node's preamble
	// (the tag byte is odd: a whole line).
	f.Add([]byte("1ITraceback (most recent call last):\n1IValueError: v\n1I\n0Ix\n"+
		"1IDuring handling of the above exception, another exception occurred:\n1I\n1ITraceback (most recent call last):\n"+
		"1IKeyError: 'k'\n1I\n1Iafter\n1I/app/s.js:1\n1Ithrow e;\n1I^\n1I\n1IError: boom\n1I    at f (/app/s.js:1:1)\n"+
		"1I\n1INode.js v20.11.0\n1I/app/c.js:2\n1Ix\n1I\n"), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, variant uint8) {
		cfg := collector.InputConfig{Name: "pods", Paths: []string{"/x/*.log"},
			Multiline: collector.MultilineConfig{Detect: []string{"all"}, MaxLines: int(variant%5) + 2}}
		if variant&8 != 0 {
			cfg.Multiline.Start = `^\d`
		}
		in, err := New(cfg, "n", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := newReader(in)
		r.out = nopEmitter{}
		s := &stream{path: "/x/a.log"}
		s.held[collector.StreamStdout] = newHeld(in.multiline)
		s.held[collector.StreamStderr] = newHeld(in.multiline)
		fl := r.newFile(s, fileID{1, 2}, "/x/a.log", 7, 0)
		fl.format = formatCRI
		var want [3][]string // logical lines per stream
		var part [3][]byte
		var off int64
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) < 2 {
				continue
			}
			st, tag, msg := "stdout", "F", l[2:]
			k := collector.StreamStdout
			if l[0]&1 == 1 {
				st, k = "stderr", collector.StreamStderr
			}
			if l[1]&1 == 0 {
				tag = "P"
			}
			line := []byte("2026-11-23T03:00:00.000000001Z " + st + " " + tag + " " + string(msg))
			r.handleLine(s, fl, line, off, off+int64(len(line))+1, false)
			off += int64(len(line)) + 1
			fl.readOff = off
			part[k] = append(part[k], msg...)
			if tag == "F" {
				want[k] = append(want[k], string(part[k]))
				part[k] = part[k][:0]
			}
		}
		for k := range part {
			if len(part[k]) > 0 || s.pend[k].active {
				want[k] = append(want[k], string(part[k])) // a last partial goes out as it is
			}
		}
		r.flushPending(s, nil)
		var got [3][]string
		ids := map[collector.ID]bool{}
		for _, rec := range r.batch.Records {
			if ids[rec.ID] {
				t.Fatalf("id %s twice", rec.ID)
			}
			ids[rec.ID] = true
			got[rec.Stream] = append(got[rec.Stream], strings.Split(string(rec.Message), "\n")...)
		}
		for k := range want {
			if strings.Join(got[k], "\n") != strings.Join(want[k], "\n") || len(got[k]) != len(want[k]) {
				t.Fatalf("stream %d: lines\n got %q\nwant %q", k, got[k], want[k])
			}
		}
	})
}
