package jsonscan

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	f := func(in string, end int, plain, ok bool) {
		t.Helper()
		raw, gotEnd, gotPlain, gotOK := String([]byte(in), 0)
		if gotEnd != end || gotPlain != plain || gotOK != ok {
			t.Errorf("String(%q) = %d %v %v, want %d %v %v", in, gotEnd, gotPlain, gotOK, end, plain, ok)
		}
		if wantRaw := in[min(1, len(in)):max(1, end-1)]; ok && string(raw) != wantRaw || !ok && raw != nil {
			t.Errorf("String(%q) content %q, want %q", in, raw, wantRaw)
		}
	}
	f(`""`, 2, true, true)
	f(`"abc"x`, 5, true, true)
	f(`"a long plain string, longer than a word"`, 41, true, true)
	f(`"a\"b"`, 6, false, true)
	f(`"tab\tnl\n\u00e9\/\\\b\f\r"`, 27, false, true)
	f(`"é"`, 4, false, true)
	f(`"long enough to go word by word, then é, then more words and a \" quote" tail`, 73, false, true)
	f("\"\xff\xfe\"", 4, false, true) // invalid UTF-8 is accepted, as encoding/json accepts it
	// Failures point at the offending byte, or at the end.
	f(`"abc`, 4, false, false)
	f(`"a long string that never ends, word by word`, 44, false, false)
	f("\"a\nb\"", 2, false, false)
	f("\"é\x01\"", 3, false, false)
	f(`"a\qb"`, 3, false, false)
	f(`"a\`, 3, false, false)
	f(`"\u12x4"`, 5, false, false)
	f(`"\u12`, 5, false, false)
	f(`"é\u00"`, 7, false, false)
}

func TestNumberAndLiteral(t *testing.T) {
	num := func(in string, end int, ok bool) {
		t.Helper()
		if gotEnd, gotOK := Number([]byte(in), 0); gotEnd != end || gotOK != ok {
			t.Errorf("Number(%q) = %d %v, want %d %v", in, gotEnd, gotOK, end, ok)
		}
	}
	num(`0`, 1, true)
	num(`-0`, 2, true)
	num(`01`, 1, true) // the number is 0; what follows is the caller's business
	num(`123,`, 3, true)
	num(`-1.25e+10]`, 9, true)
	num(`1E5`, 3, true)
	num(`-`, 1, false)
	num(`-a`, 1, false)
	num(`1.`, 2, false)
	num(`1.e5`, 2, false)
	num(`1e`, 2, false)
	num(`1e+`, 3, false)
	num(`.5`, 0, false)
	num(`+1`, 0, false)
	lit := func(in, l string, end int, ok bool) {
		t.Helper()
		if gotEnd, gotOK := Literal([]byte(in), 0, l); gotEnd != end || gotOK != ok {
			t.Errorf("Literal(%q, %q) = %d %v, want %d %v", in, l, gotEnd, gotOK, end, ok)
		}
	}
	lit(`true,`, "true", 4, true)
	lit(`null`, "null", 4, true)
	lit(`tru`, "true", 3, false)
	lit(`falsy`, "false", 4, false)
}

func TestSkip(t *testing.T) {
	f := func(in string, maxDepth, end int, st Status) {
		t.Helper()
		if gotEnd, gotSt := Skip([]byte(in), 0, maxDepth); gotEnd != end || gotSt != st {
			t.Errorf("Skip(%q, %d) = %d %v, want %d %v", in, maxDepth, gotEnd, gotSt, end, st)
		}
	}
	f(` {"a" : [1, "x", {"b": null}, true, false, -2.5e3], "c":{}} tail`, 10, 59, OK)
	f(`[]`, 1, 2, OK)
	f(`"s"`, 0, 3, OK)
	f(`12 `, 0, 2, OK)
	f(`[[1]]`, 2, 5, OK)
	f(`[[1]]`, 1, 1, TooDeep)
	f(`{"a":{}}`, 1, 5, TooDeep)
	f(``, 5, 0, Invalid)
	f(`  `, 5, 2, Invalid)
	f(`{"a":1,}`, 5, 7, Invalid)
	f(`{"a" 1}`, 5, 5, Invalid)
	f(`{a:1}`, 5, 1, Invalid)
	f(`{"a":1 "b":2}`, 5, 7, Invalid)
	f(`[1,]`, 5, 3, Invalid)
	f(`[1 2]`, 5, 3, Invalid)
	f(`[,1]`, 5, 1, Invalid)
	f(`{"a":tru}`, 5, 8, Invalid)
	f(`{"a":01}`, 5, 6, Invalid)
	f(`{"a":"b`, 5, 7, Invalid)
	f(`[`, 5, 1, Invalid)
	f(`}`, 5, 0, Invalid)
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	f(deep, MaxDepth, len(deep), OK)
	f("["+deep+"]", MaxDepth, MaxDepth, TooDeep)
}

func TestValidAndIsObject(t *testing.T) {
	f := func(in string, valid, object bool) {
		t.Helper()
		if got := Valid([]byte(in)); got != valid {
			t.Errorf("Valid(%q) = %v, want %v", in, got, valid)
		}
		if got := IsObject([]byte(in), 64); got != object {
			t.Errorf("IsObject(%q) = %v, want %v", in, got, object)
		}
	}
	f(`{}`, true, true)
	f(" \t\r\n{\"a\":[1,{\"b\":\"\\u00e9\"}]} \n", true, true)
	f(`[1]`, true, false)
	f(`"x"`, true, false)
	f(`null`, true, false)
	f(`{} {}`, false, false)
	f(`{"a":1}x`, false, false)
	f(``, false, false)
	f(`{"a":01}`, false, false)
	f(strings.Repeat(`{"a":`, 64)+"1"+strings.Repeat("}", 64), true, true)
	f(strings.Repeat(`{"a":`, 65)+"1"+strings.Repeat("}", 65), true, false)
}

func TestMemberAndElement(t *testing.T) {
	b := []byte(`{ "a" : 1 , "b\n" :[ 2 , "x" ] }`)
	var keys []string
	var plains []bool
	i := 1
	for first := true; ; first = false {
		key, plain, next, done, ok := Member(b, i, first)
		if !ok {
			t.Fatalf("Member at %d failed at %d", i, next)
		}
		if done {
			if next != len(b) {
				t.Errorf("object ends at %d, want %d", next, len(b))
			}
			break
		}
		keys, plains = append(keys, string(key)), append(plains, plain)
		if next, st := Skip(b, next, 5); st != OK {
			t.Fatalf("value at %d: %v", next, st)
		} else {
			i = next
		}
	}
	if strings.Join(keys, ",") != `a,b\n` || !plains[0] || plains[1] {
		t.Errorf("keys %q plain %v", keys, plains)
	}
	arr := []byte(`[ 2 , "x" ]`)
	var elems []string
	i = 1
	for first := true; ; first = false {
		next, done, ok := Element(arr, i, first)
		if !ok || done {
			if !ok || next != len(arr) {
				t.Fatalf("array: next %d ok %v", next, ok)
			}
			break
		}
		end, st := Skip(arr, next, 1)
		if st != OK {
			t.Fatal(st)
		}
		elems = append(elems, string(arr[next:end]))
		i = end
	}
	if strings.Join(elems, "|") != `2|"x"` {
		t.Errorf("elements %q", elems)
	}
	bad := func(in string, first bool, at int) {
		t.Helper()
		if _, _, next, _, ok := Member([]byte(in), 0, first); ok || next != at {
			t.Errorf("Member(%q, %v) = %d %v, want failure at %d", in, first, next, ok, at)
		}
	}
	bad(` "a" 1`, true, 5)
	bad(` , "a":1`, true, 1)
	bad(` "a":1`, false, 1)
	bad(`, 1`, false, 2)
	bad(`"a\x":1`, true, 3)
	bad(``, true, 0)
}

func TestUnquote(t *testing.T) {
	f := func(raw, want string, replaced bool) {
		t.Helper()
		got, rep := Unquote([]byte("keep"), []byte(raw))
		if string(got) != "keep"+want || rep != replaced {
			t.Errorf("Unquote(%q) = %q %v, want %q %v", raw, got[4:], rep, want, replaced)
		}
	}
	f(``, ``, false)
	f(`plain ascii, long enough for words`, `plain ascii, long enough for words`, false)
	f(`a\"b\\c\/d\b\f\n\r\te`, "a\"b\\c/d\b\f\n\r\te", false)
	f(`caf\u00e9 \u65e5\u672C \ud83d\ude00 \uD83D\uDE00`, "café 日本 😀 😀", false)
	f(`é 日本 😀, a word or two of ASCII after`, "é 日本 😀, a word or two of ASCII after", false)
	f(`lone \ud83d x`, "lone \uFFFD x", true)
	f(`lone \ude00`, "lone \uFFFD", true)
	f(`broken \ud83d\u0041`, "broken \uFFFDA", true)
	f(`twice \ud83d\ud83d\ude00`, "twice \uFFFD😀", true)
	f(`at end \ud83d`, "at end \uFFFD", true)
	f(`\ufffd is no replacement`, "\uFFFD is no replacement", false)
	f("bad \xff\xfe utf8 \xed\xa0\x80 \xc3", "bad \uFFFD\uFFFD utf8 \uFFFD\uFFFD\uFFFD \uFFFD", true)
	f("\xc3\\u00a9", "\uFFFD©", true)
}

func TestUnquoteRaw(t *testing.T) {
	f := func(in, want string, end int, ok bool) {
		t.Helper()
		got, gotEnd, gotOK := UnquoteRaw([]byte("keep"), []byte(in), 0)
		if gotOK != ok || gotEnd != end || ok && string(got) != "keep"+want {
			t.Errorf("UnquoteRaw(%q) = %q %d %v, want %q %d %v", in, got[4:], gotEnd, gotOK, want, end, ok)
		}
	}
	f(`""`, ``, 2, true)
	f(`"msg\n",`, "msg\n", 7, true)
	f(`"10.1.2.3 - - \"GET /api HTTP/1.1\" 200 512 and a few more words\n"`, "10.1.2.3 - - \"GET /api HTTP/1.1\" 200 512 and a few more words\n", 67, true)
	f(`"caf\u00e9 \ud83d\ude00 lone \ud83d\u0041"`, "café 😀 lone \uFFFDA", 42, true)
	// Raw control characters and invalid UTF-8 are delivered as they are.
	f("\"tab\there \xff\xfe\"", "tab\there \xff\xfe", 13, true)
	f(`"unterminated`, ``, 13, false)
	f(`"bad \q"`, ``, 6, false)
	f(`"bad \u12x4"`, ``, 9, false)
	f(`"ends in \`, ``, 10, false)
}
