package tail

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
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

// FuzzJSONObject: the scanner that guards Record.Fields agrees with encoding/json.
func FuzzJSONObject(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":null}],"c":"\u00e9"}`))
	f.Add([]byte(`{"a":01}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return
		}
		want := json.Valid(b) && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
		if got := isJSONObject(b); got != want && !(want && bytes.Count(b, []byte("{"))+bytes.Count(b, []byte("[")) > maxJSONDepth) {
			t.Fatalf("isJSONObject(%q) = %v, want %v", b, got, want)
		}
	})
}
