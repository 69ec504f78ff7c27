package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScan checks every primitive against encoding/json, on the input as it is and on the
// input as the content of a string:
//   - Valid agrees with json.Valid, and where both reject the text they stop at the same byte
//     (json.SyntaxError's offset), depth errors included; IsObject agrees too;
//   - Skip's span of the first value is json.Decoder's, and what it spans is valid;
//   - a string decodes byte for byte as encoding/json decodes it (Unquote: escapes, surrogate
//     pairs, lone surrogates and invalid UTF-8 as U+FFFD); plain is exactly "no escape, ASCII";
//     UnquoteRaw gives the same value up to the bytes it keeps as they are (invalid UTF-8, raw
//     control characters), and accepts exactly what String would with those made valid;
//   - Member and Element walk an object and an array into what encoding/json decodes into
//     map[string]json.RawMessage and []json.RawMessage;
//   - the Framer finds Skip's end on a valid array or object, and the same result fed in two
//     pieces as in one.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"log":"10.1.2.3 - - \"GET /api HTTP/1.1\" 200\n","stream":"stdout","time":"2026-11-23T03:00:00.123456789Z"}`,
		`{"a":[1,2,{"b":null}],"c":"\u00e9","d":-1.5e-3,"e":true,"f":false}`,
		`{"s":"\ud83d\ude00 \ud83d x \ude00 \ud83d\u0041 \ud83d\ud83d\ude00","t":"\ufffd"}`,
		"{\"k\":\"\xff\xfe \xed\xa0\x80 \xc3\"}",
		"\"tab\there\x01\"",
		`["app.web",1795402800,{"message":"from json","n":1,"tags":["a","b"]},{"chunk":"anNvbg=="}]`,
		`{"id":"a","id":"b","x":{}} `,
		`{"a":01}`, `{"a":1,}`, `[1 2]`, `"\u12x4"`, `-`, `1.`, `01`, `tru`, `nul`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
		` {"a" : [ ] , "b" : { } } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkText(t, data)
		q := make([]byte, 0, len(data)+2)
		q = append(append(append(q, '"'), data...), '"')
		checkText(t, q)
	})
}

func checkText(t *testing.T, data []byte) {
	// Validity, and where the text stops being JSON.
	valid := json.Valid(data)
	if got := Valid(data); got != valid {
		t.Fatalf("Valid(%q) = %v, encoding/json %v", data, got, valid)
	}
	end, st := Skip(data, 0, MaxDepth)
	at := end
	if st == OK {
		at = SkipSpace(data, end)
	}
	if !valid {
		var raw json.RawMessage
		var se *json.SyntaxError
		if err := json.Unmarshal(data, &raw); !errors.As(err, &se) {
			t.Fatalf("%q: encoding/json error %v is no SyntaxError", data, err)
		}
		want := int(se.Offset) - 1 // the offending byte; Offset counts it
		if at == len(data) {
			want = int(se.Offset) // the end: Offset is the length
		}
		if at != want {
			t.Fatalf("%q: invalid at %d (%v), encoding/json at offset %d (%v)", data, at, st, se.Offset, se)
		}
		if (st == TooDeep) != strings.Contains(se.Error(), "max depth") {
			t.Fatalf("%q: status %v, encoding/json %v", data, st, se)
		}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if got, want := IsObject(data, MaxDepth), valid && len(trimmed) > 0 && trimmed[0] == '{'; got != want {
		t.Fatalf("IsObject(%q) = %v, want %v", data, got, want)
	}

	// The span of the first value.
	dec := json.NewDecoder(bytes.NewReader(data))
	var first json.RawMessage
	if dec.Decode(&first) == nil {
		if st != OK || int64(end) != dec.InputOffset() {
			t.Fatalf("%q: Skip = %d %v, json.Decoder read %d bytes", data, end, st, dec.InputOffset())
		}
	}
	if st == OK && !json.Valid(data[:end]) {
		t.Fatalf("%q: Skip spans %q, which is not JSON", data, data[:end])
	}

	if len(trimmed) == 0 {
		return
	}
	i := len(data) - len(trimmed)
	switch trimmed[0] {
	case '"':
		checkString(t, data, i, valid)
	case '{':
		if valid {
			checkObject(t, data, i)
		}
		checkFramer(t, data, i, st == OK, end)
	case '[':
		if valid {
			checkArray(t, data, i)
		}
		checkFramer(t, data, i, st == OK, end)
	}
}

// checkString checks the string at data[i], a whole JSON text when valid.
func checkString(t *testing.T, data []byte, i int, valid bool) {
	raw, end, plain, ok := String(data, i)
	if valid {
		var want string
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if !ok || end != len(bytes.TrimRight(data, " \t\r\n")) || string(raw) != string(data[i+1:end-1]) {
			t.Fatalf("%q: String = %q %d %v", data, raw, end, ok)
		}
		got, replaced := Unquote(nil, raw)
		if !ok || string(got) != want {
			t.Fatalf("%q: Unquote %q (ok %v), encoding/json %q", data, got, ok, want)
		}
		if wantPlain := bytes.IndexByte(raw, '\\') < 0 && !hasHigh(raw); plain != wantPlain {
			t.Fatalf("%q: plain %v, want %v", data, plain, wantPlain)
		}
		if replaced && !strings.Contains(want, "\uFFFD") || !utf8.Valid(raw) && !replaced {
			t.Fatalf("%q: replaced %v, value %q", data, replaced, want)
		}
	}
	// UnquoteRaw takes raw control characters: it accepts what String accepts once they are
	// made valid (here: spaces), and its value, control characters made spaces and invalid
	// UTF-8 replaced, is encoding/json's value of that text, control characters made spaces.
	spaced := mapControl(bytes.Clone(data))
	_, wantEnd, _, wantOK := String(spaced, i)
	got, gotEnd, gotOK := UnquoteRaw(nil, data, i)
	if gotOK != wantOK || gotOK && gotEnd != wantEnd {
		t.Fatalf("%q: UnquoteRaw end %d ok %v, String of the text with spaces %d %v", data, gotEnd, gotOK, wantEnd, wantOK)
	}
	if !gotOK {
		return
	}
	var want string
	if err := json.Unmarshal(spaced[i:wantEnd], &want); err != nil {
		t.Fatalf("%q: %v", spaced[i:wantEnd], err)
	}
	if repaired := repairUTF8(mapControl(bytes.Clone(got))); string(repaired) != string(mapControl([]byte(want))) {
		t.Fatalf("%q: UnquoteRaw %q, encoding/json %q", data, got, want)
	}
	if utf8.Valid(data) && !hasControl(data) && string(got) != want {
		t.Fatalf("%q: UnquoteRaw %q, encoding/json %q", data, got, want)
	}
}

// walk steps through the object or array at data[i] with Member or Element and returns its
// keys (decoded; none for an array) and raw values.
func walk(t *testing.T, data []byte, i int, object bool) (keys, vals []string) {
	i++
	for first := true; ; first = false {
		var key []byte
		var next int
		var done, ok bool
		if object {
			key, _, next, done, ok = Member(data, i, first)
		} else {
			next, done, ok = Element(data, i, first)
		}
		if !ok {
			t.Fatalf("%q: Member/Element failed at %d", data, next)
		}
		if done {
			return keys, vals
		}
		end, st := Skip(data, next, MaxDepth)
		if st != OK {
			t.Fatalf("%q: value at %d: %v", data, next, st)
		}
		if object {
			k, _ := Unquote(nil, key)
			keys = append(keys, string(k))
		}
		vals = append(vals, string(data[next:end]))
		i = end
	}
}

func checkObject(t *testing.T, data []byte, i int) {
	var want map[string]json.RawMessage
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	keys, vals := walk(t, data, i, true)
	got := map[string]string{}
	for k := range keys {
		got[keys[k]] = vals[k] // the last of duplicate keys wins, as in encoding/json
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != string(v) {
			t.Fatalf("%q: member %q = %q, encoding/json %q", data, k, got[k], v)
		}
	}
}

func checkArray(t *testing.T, data []byte, i int) {
	var want []json.RawMessage
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	_, got := walk(t, data, i, false)
	if len(got) != len(want) {
		t.Fatalf("%q: %d elements, encoding/json %d", data, len(got), len(want))
	}
	for k := range want {
		if got[k] != string(want[k]) {
			t.Fatalf("%q: element %d = %q, encoding/json %q", data, k, got[k], want[k])
		}
	}
}

// checkFramer frames the value at data[i:] whole and in two pieces.
func checkFramer(t *testing.T, data []byte, i int, skipOK bool, skipEnd int) {
	v := data[i:]
	fr := Framer{Max: 1 << 20, MaxDepth: MaxDepth}
	n, done, st := fr.Scan(v)
	if skipOK && (!done || st != OK || i+n != skipEnd) {
		t.Fatalf("%q: Framer %d %v %v, Skip ends at %d", data, n, done, st, skipEnd)
	}
	for _, cut := range []int{len(v) / 2, len(v) / 3, 1} {
		fr.Reset()
		n1, done1, st1 := fr.Scan(v[:cut])
		if !done1 && st1 == OK {
			n1, done1, st1 = fr.Scan(v)
		}
		if n1 != n || done1 != done || st1 != st {
			t.Fatalf("%q cut at %d: Framer %d %v %v, whole %d %v %v", v, cut, n1, done1, st1, n, done, st)
		}
	}
}

func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func mapControl(b []byte) []byte {
	for i, c := range b {
		if c < 0x20 {
			b[i] = ' '
		}
	}
	return b
}

// repairUTF8 replaces each byte of invalid UTF-8 with U+FFFD, as encoding/json does.
func repairUTF8(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}
