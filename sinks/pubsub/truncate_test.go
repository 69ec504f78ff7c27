package pubsub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestQuotedLenMatchesEncoder(t *testing.T) {
	f := func(s string) {
		t.Helper()
		if got, want := quotedLen([]byte(s)), len(collector.AppendJSONString(nil, []byte(s))); got != want {
			t.Errorf("quotedLen(%q) = %d, encoder writes %d", s, got, want)
		}
	}
	f("")
	f("plain ascii")
	f("quote \" backslash \\ newline \n cr \r tab \t")
	f("control \x00 \x01 \x1f del \x7f")
	f("multibyte é € 𝄞")
	f("invalid \xff \xc3 \xed\xa0\x80 end")
}

func TestAppendFitted(t *testing.T) {
	base := collector.Record{Source: testSource, ID: collector.MakeID(1, 1), Stream: collector.StreamStdout}
	full := func(r collector.Record) int { return len(r.AppendJSON(nil)) }
	f := func(name string, r collector.Record, budget int, wantTrunc, wantOK bool, wantMsg string) {
		t.Helper()
		out, trunc, ok := appendFitted([]byte("prefix"), &r, budget)
		if trunc != wantTrunc || ok != wantOK {
			t.Fatalf("%s: truncated %v ok %v, want %v %v", name, trunc, ok, wantTrunc, wantOK)
		}
		if !ok {
			if string(out) != "prefix" {
				t.Errorf("%s: dst changed to %q", name, out)
			}
			return
		}
		env := out[len("prefix"):]
		if len(env) > budget {
			t.Errorf("%s: %d bytes over budget %d", name, len(env), budget)
		}
		var got struct{ Message string }
		if err := json.Unmarshal(env, &got); err != nil {
			t.Fatalf("%s: invalid JSON %v: %s", name, err, env)
		}
		if got.Message != wantMsg {
			t.Errorf("%s: message %q, want %q", name, got.Message, wantMsg)
		}
	}
	r := base
	r.Message = []byte("0123456789")
	f("fits", r, full(r), false, true, "0123456789")
	f("one byte short", r, full(r)-1, true, true, "012345678")
	f("no message left", r, full(r)-10, true, true, "")
	f("not even empty", r, full(r)-11, false, false, "")

	r.Message = []byte("ab\ncd")
	f("escape kept whole", r, full(r)-2, true, true, "ab\n")
	f("escape not split", r, full(r)-3, true, true, "ab") // "\n" is two bytes, both go
	r.Message = []byte("aé")
	f("rune not split", r, full(r)-1, true, true, "a")
	r.Message = []byte("a\x01")
	f("control escape", r, full(r)-1, true, true, "a")

	r = base
	r.Message = []byte("msg")
	r.Fields = []byte(`{"big":"` + strings.Repeat("f", 100) + `"}`)
	r.Tag = []byte("tag")
	withoutFields := r
	withoutFields.Fields = nil
	f("fields dropped", r, full(withoutFields), true, true, "msg")
	withoutTag := withoutFields
	withoutTag.Tag = nil
	// The tag is kept while an empty message fits next to it, and dropped when not.
	f("tag kept", r, full(withoutFields)-3, true, true, "")
	f("tag dropped", r, full(withoutTag)-1, true, true, "ms")
}

// FuzzAppendFitted checks, for any message and budget, that the fitted envelope is valid JSON
// within the budget, that its message is a prefix of the original cut on a character boundary,
// and that nothing is cut when the whole envelope fits.
func FuzzAppendFitted(f *testing.F) {
	f.Add([]byte("hello"), []byte(nil), 10)
	f.Add([]byte("é\n\"\\\x00\xff"), []byte(`{"a":1}`), 3)
	f.Add([]byte(strings.Repeat("x", 300)), []byte(`{"k":"v"}`), 200)
	f.Fuzz(func(t *testing.T, msg, fields []byte, cut int) {
		if !json.Valid(fields) || len(fields) > 0 && fields[0] != '{' {
			fields = nil
		}
		r := collector.Record{Source: testSource, ID: collector.MakeID(3, 4), Message: msg, Fields: fields}
		full := r.AppendJSON(nil)
		budget := len(full) - max(cut, 0)%(len(full)+1)
		out, trunc, ok := appendFitted(nil, &r, budget)
		if !ok {
			bare := collector.Record{Source: r.Source, ID: r.ID}
			if n := len(bare.AppendJSON(nil)); n <= budget {
				t.Fatalf("gave up at budget %d though the bare %d-byte envelope fits", budget, n)
			}
			return
		}
		if len(out) > budget {
			t.Fatalf("%d bytes over budget %d", len(out), budget)
		}
		if trunc != (budget < len(full)) {
			t.Fatalf("truncated %v at budget %d of %d", trunc, budget, len(full))
		}
		if !trunc && !bytes.Equal(out, full) {
			t.Fatalf("fitting envelope changed")
		}
		var env struct{ Message string }
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("invalid JSON: %v: %s", err, out)
		}
		n := len(msg) - len(bytes.TrimPrefix(msg, []byte(env.Message)))
		if utf8.Valid(msg) && (n != len(env.Message) || n < len(msg) && !utf8.RuneStart(msg[n])) {
			t.Fatalf("message %q is not a character-boundary prefix of %q", env.Message, msg)
		}
	})
}
