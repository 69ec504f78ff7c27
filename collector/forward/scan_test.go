package forward

import (
	"errors"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func TestMsgpackScanner(t *testing.T) {
	frames := [][]byte{
		messageFrame("app", t0, record(nil, "log", "hello", "n", 3, "f", 1.5, "b", []byte{1, 2}), option(nil, "abc")),
		forwardFrame("app", [][]byte{entry(t0, record(nil, "a", nil), true)}, nil),
		packedFrame("app", [][]byte{entry(t0, record(nil, "a", true), false)}, option(nil, "x"), 1),
		append(msgp.AppendArrayHeader(nil, 2), []byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xc7, 1, 2, 3}...),
	}
	for i, frame := range frames {
		// Fed byte by byte, the scanner finds the end exactly, with trailing bytes after it.
		var s msgpackScanner
		s.max = 1 << 20
		s.reset()
		stream := append(append([]byte(nil), frame...), 0x92, 0x01)
		found := -1
		for n := 1; n <= len(stream); n++ {
			end, done, err := s.scan(stream[:n])
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if done {
				found = end
				break
			}
		}
		if found != len(frame) {
			t.Errorf("frame %d: end %d, want %d", i, found, len(frame))
		}
	}
}

func TestMsgpackScannerLimits(t *testing.T) {
	f := func(name string, frame []byte, max int, want error) {
		t.Helper()
		var s msgpackScanner
		s.max = max
		s.reset()
		_, _, err := s.scan(frame)
		if !errors.Is(err, want) {
			t.Errorf("%s: err %v, want %v", name, err, want)
		}
	}
	// A 100 MiB bin prefix is refused at its header, before any payload arrives.
	f("100 MiB bin", []byte{0x93, 0xa1, 't', 0xc6, 0x06, 0x40, 0x00, 0x00}, 32<<20, errTooLarge)
	f("huge array count", []byte{0x92, 0xdd, 0xff, 0xff, 0xff, 0xff}, 32<<20, errTooLarge)
	f("huge map count", []byte{0x92, 0xdf, 0x7f, 0xff, 0xff, 0xff}, 32<<20, errTooLarge)
	f("never used byte", []byte{0x92, 0xc1}, 1<<20, errMalformed)
	deep := make([]byte, maxDepth+2)
	for i := range deep {
		deep[i] = 0x91
	}
	f("too deep", deep, 1<<20, errTooDeep)
}

func TestJSONScanner(t *testing.T) {
	f := func(in string, want int) {
		t.Helper()
		s := newJSONScanner(1 << 20)
		n, done, err := s.scan([]byte(in))
		if err != nil || !done || n != want {
			t.Errorf("%q: n=%d done=%v err=%v, want %d", in, n, done, err, want)
		}
	}
	f(`["a",1,{"x":"]}\"["},{}]["next"]`, 24)
	f(`[[[]]]`, 6)
	s := newJSONScanner(8)
	if _, _, err := s.scan([]byte(`["aaaaaaaaaa"]`)); !errors.Is(err, errTooLarge) {
		t.Errorf("limit: %v", err)
	}
}

func TestJSONToMsgpack(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		mp, rest, err := appendJSONAsMsgpack(nil, []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if len(rest) != 0 {
			t.Errorf("%s: rest %q", in, rest)
		}
		rec := append(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "k"), mp...)
		got, _, _, err := appendRecordJSON(nil, rec)
		if err != nil {
			t.Fatalf("%s: back to JSON: %v", in, err)
		}
		if string(got) != `{"k":`+want+`}` {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	f(`{"a":"b","n":-12,"f":1.25,"t":true,"z":null}`, `{"a":"b","n":-12,"f":1.25,"t":true,"z":null}`)
	f(` [ 1 , "x\"\\\/\n\u00e9\ud83d\ude00" , [ ] , { } ]`, `[1,"x\"\\/\né😀",[],{}]`)
	f(`1e3`, `1000`)
	f(`99999999999999999999`, `1e+20`)
	for _, bad := range []string{`{"a" 1}`, `[1 2]`, `{1:2}`, `"abc`, `tru`, `[`, `"\q"`, `"\u12"`, `-`} {
		if _, _, err := appendJSONAsMsgpack(nil, []byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
