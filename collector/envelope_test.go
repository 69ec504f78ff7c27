package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendJSONEnvelope(t *testing.T) {
	src := NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart-7d9f", PodUID: "u-1", Container: "app", Node: "n1",
		Labels: map[string]string{"tier": "web", "app": "cart"}})
	ts := time.Date(2026, 11, 23, 3, 0, 0, 123456789, time.UTC).UnixNano()
	f := func(r Record, want string) {
		t.Helper()
		got := string(r.AppendJSON(nil))
		if got != want {
			t.Errorf("envelope:\n got %s\nwant %s", got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("not valid JSON: %s", got)
		}
	}
	f(Record{Source: src, Time: ts, ID: MakeID(0xabc, 42), Stream: StreamStdout, Message: []byte("hello")},
		`{"id":"0000000000000abc000000000000002a","time":"2026-11-23T03:00:00.123456789Z","stream":"stdout","message":"hello","source":"pods","tag":"",`+
			`"kubernetes":{"namespace":"shop","pod":"cart-7d9f","pod_uid":"u-1","container":"app","node":"n1","labels":{"app":"cart","tier":"web"}},"fields":{}}`)
	f(Record{Source: NewSource(2, "apps", nil), Time: 0, Stream: StreamApp, Tag: []byte("app.web"), Message: []byte("a \"q\" \\ \n\t\x01 é \xff"), Fields: []byte(`{"k":1}`)},
		`{"id":"00000000000000000000000000000000","time":"1970-01-01T00:00:00.000000000Z","stream":"app","message":"a \"q\" \\ \n\t\u0001 é \ufffd","source":"apps","tag":"app.web","kubernetes":{},"fields":{"k":1}}`)
	f(Record{Stream: StreamStderr, Time: -1},
		`{"id":"00000000000000000000000000000000","time":"1969-12-31T23:59:59.999999999Z","stream":"stderr","message":"","source":"","tag":"","kubernetes":{},"fields":{}}`)
}

func TestEncoderTimeCache(t *testing.T) {
	var e Encoder
	for _, ts := range []int64{5e9 + 1, 5e9 + 999999999, 6e9, -1, 5e9} {
		want := string(AppendTime(nil, ts))
		got := string(e.appendTime(nil, ts))
		if got != want {
			t.Errorf("appendTime(%d) = %s, want %s", ts, got, want)
		}
	}
}

func TestAppendTimeMatchesStdlib(t *testing.T) {
	for _, tt := range []time.Time{
		time.Date(2000, 2, 29, 23, 59, 59, 1, time.UTC),
		time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 12, 30, 45, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 14, 7, 37, 5000, time.UTC),
	} {
		want := tt.Format("2006-01-02T15:04:05.000000000Z")
		if got := string(AppendTime(nil, tt.UnixNano())); got != want {
			t.Errorf("AppendTime(%v) = %s, want %s", tt, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n", "\xff\xfe", "日本語", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := AppendJSONString(nil, b)
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("invalid JSON string %q for input %q: %v", out, b, err)
		}
		if want := appendJSONStringRef(nil, b); !bytes.Equal(out, want) {
			t.Fatalf("input %q: got %q, want %q", b, out, want)
		}
		// Appending keeps what dst held, whatever its spare capacity.
		prefix := []byte("prefix:")
		for _, dst := range [][]byte{prefix, append(make([]byte, 0, 64), prefix...)} {
			got := AppendJSONString(dst, b)
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], out) {
				t.Fatalf("appended to %q: got %q", dst, got)
			}
		}
	})
}

// appendJSONStringRef is the byte-at-a-time definition AppendJSONString must match.
func appendJSONStringRef(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b == '\n':
			dst = append(dst, `\n`...)
		case b == '\r':
			dst = append(dst, `\r`...)
		case b == '\t':
			dst = append(dst, `\t`...)
		case b < 0x20:
			dst = fmt.Appendf(dst, `\u%04x`, b)
		case b < utf8.RuneSelf:
			dst = append(dst, b)
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(dst, '"')
}

func TestAppendJSONStringCases(t *testing.T) {
	long := strings.Repeat(`{"k":"v\\"}`, 50)
	for _, in := range []string{
		"", "a", "abcdefgh", `"""""""""`, `\\\\\\\\\\`, "\x00\x01\x1f\x7f", "tab\there\nnew\rline",
		"日本語のログ", "\xff\xfe\xfd bad", "mixed \"q\" é \x02 \xc3", long, long + "\x01" + long,
		strings.Repeat("\x01", 100), strings.Repeat("\xff", 100), "\u2028\u2029",
	} {
		got := AppendJSONString(nil, []byte(in))
		if want := appendJSONStringRef(nil, []byte(in)); !bytes.Equal(got, want) {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	src := NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart-7d9f8b6c5-x2x9k", PodUID: "8a4f2c1e-aaaa-4bbb-8ccc-000000000001", Container: "app", Node: "node-1", Labels: map[string]string{"app": "cart"}})
	r := Record{Source: src, Time: time.Now().UnixNano(), ID: MakeID(7, 1234), Stream: StreamStdout,
		Message: []byte(`{"level":"info","msg":"handled request","path":"/api/v1/cart/items","status":200,"latency_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"u-12345"}`)}
	buf := make([]byte, 0, 4096)
	var e Encoder
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Message)))
	for b.Loop() {
		buf = e.AppendJSON(buf[:0], &r)
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	msg := []byte(`{"level":"info","ts":"2026-11-25T10:00:00.123Z","msg":"handled request","method":"GET","path":"/api/v1/cart/items","status":200,"latency_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"u-12345","bytes":5120}`)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSONString(buf[:0], msg)
	}
}
