package bigquery

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func TestRowEncoderRejects(t *testing.T) {
	s, err := newRowSchema()
	if err != nil {
		t.Fatal(err)
	}
	enc := newRowEncoder(s)
	f := func(in, want string) {
		t.Helper()
		out, err := enc.appendRow([]byte("keep"), []byte(in))
		if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want malformed %q", in, err, want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst changed on error: %q", in, out)
		}
	}
	f(``, "unexpected end")
	f(`   `, "unexpected end")
	f(`{"id":"a"`, "unexpected end")
	f(`{"id":"a",}`, "invalid character '}' at offset 10")
	f(`{"id":"a"} x`, "invalid character 'x'")
	f(`{"id":"\x"}`, "invalid character 'x'")
	f(`{"id":"a`+"\n"+`"}`, "invalid character")
	f(`{"id":"a","n":01}`, "invalid character '1'")
	f(`{"id":"a","n":[1,]}`, "invalid character ']'")
	f(`{"id":"a","n":tru}`, "invalid character '}'")
	f(`{"id":"a","x":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)+`}`, "exceeded max depth")
	f(`[]`, "envelope is not a JSON object")
	f(`"x"`, "envelope is not a JSON object")
	f(`null`, "no id")
	f(`{"id":5,"time":"2026-11-23T03:00:00Z"}`, "id is not a string")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":[]}`, "kubernetes is not an object")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"pod":{}}}`, "kubernetes.pod is not a string")
	f(`{"id":5,"x":}`, "invalid character '}'") // syntax errors first, as encoding/json
	f(`{"id":"","time":"2026-11-23T03:00:00Z"}`, "no id")
	f(`{"time":"2026-11-23T03:00:00Z"}`, "no id")
	f(`{"id":"a"}`, "time")
	f(`{"id":"a","time":"2026-11-23 03:00:00"}`, "time")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","fields":"x"}`, "fields is not a JSON object")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":[1]}}`, "kubernetes.labels")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"annotations":"x"}}`, "kubernetes.annotations is not a JSON object")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"workload_kind":1}}`, "kubernetes.workload_kind is not a string")
}

// TestRowEncoderWatchColumns: the columns the pod watch fills reach the row.
func TestRowEncoderWatchColumns(t *testing.T) {
	s, md := schemaAndDescriptor(t)
	row, err := newRowEncoder(s).appendRow(nil, []byte(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"namespace":"shop",`+
		`"pod":"cart-1","workload":"cart","workload_kind":"Deployment","image":"r/cart:1","labels":{"app":"cart"},"annotations":{"team":"pay"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(row, m); err != nil {
		t.Fatal(err)
	}
	k := m.Get(md.Fields().ByName("kubernetes")).Message()
	kd := k.Descriptor().Fields()
	for name, want := range map[string]string{"workload": "cart", "workload_kind": "Deployment", "image": "r/cart:1",
		"annotations": `{"team":"pay"}`, "labels": `{"app":"cart"}`, "namespace": "shop"} {
		if got := k.Get(kd.ByName(protoreflect.Name(name))).String(); got != want {
			t.Errorf("kubernetes.%s = %q, want %q", name, got, want)
		}
	}
}

func TestRowEncoderNulls(t *testing.T) {
	s, md := schemaAndDescriptor(t)
	row, err := newRowEncoder(s).appendRow(nil, []byte(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":null,"fields":null}`))
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(row, m); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"kubernetes", "fields", "namespace", "pod"} {
		if m.Has(md.Fields().ByName(protoreflect.Name(col))) {
			t.Errorf("%s set, want NULL", col)
		}
	}
}

// FuzzRowEncoder checks rowEncoder against the encoding/json encoder it replaced: the same
// row bytes for every input, or an errMalformed from both; and every row decodes.
func FuzzRowEncoder(f *testing.F) {
	f.Add([]byte(envelopeJSON(1)))
	f.Add([]byte(`{"id":"a","time":"2026-11-23T03:00:00Z","fields":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{"id":"\u0000","time":"0001-01-01T00:00:00Z","kubernetes":{}}`))
	for _, in := range oracleCases {
		f.Add([]byte(in))
	}
	s, err := newRowSchema()
	if err != nil {
		f.Fatal(err)
	}
	md, err := messageDescriptor(s.descriptor)
	if err != nil {
		f.Fatal(err)
	}
	enc, oracle := newRowEncoder(s), &oracleEncoder{s: s}
	f.Fuzz(func(t *testing.T, data []byte) {
		row, err := enc.appendRow(nil, data)
		want, wantErr := oracle.appendRow(nil, data)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: err %v, encoding/json err %v", data, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		if !bytes.Equal(row, want) {
			t.Fatalf("%q:\nrow       %x\nencoding/json %x", data, row, want)
		}
		// Every accepted envelope is a row the Write API can decode.
		if err := proto.Unmarshal(row, dynamicpb.NewMessage(md)); err != nil {
			t.Fatalf("row does not decode: %v", err)
		}
	})
}

// oracleCases are the corners of JSON and of encoding/json's decoding that rowEncoder must
// reproduce; TestRowEncoderMatchesOracle runs them and FuzzRowEncoder starts from them.
var oracleCases = []string{
	// Key order, whitespace, unknown members of every kind.
	` {"time" : "2026-11-23T03:00:00Z" ,` + "\t\r\n" + `"id":"a"} ` + "\n",
	`{"fields":{"x":1},"kubernetes":{"labels":{"a":"b"},"node":"n"},"tag":"t","source":"s","message":"m","stream":"e","time":"2026-11-23T03:00:00.5Z","id":"a"}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","u1":{"a":{"b":[1,2,{"c":null}]}},"u2":[],"u3":-0.5e+10,"u4":true,"u5":false,"u6":null,"u7":"\"}"}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"x":{"y":[{}]},"pod":"p","z":[]}}`,
	// Escapes, surrogate pairs, lone surrogates, invalid UTF-8 in columns and in JSON text.
	`{"id":"\u0061\"\\\/\b\f\n\r\t","time":"2026-11-23T03:00:00Z","message":"\ud83d\ude00 \uD83D\uDE00 é 😀"}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","message":"\ud83d x \ude00 \ud83d\u0041 \ud83d\ud83d\ude00 \ud83d"}`,
	"{\"id\":\"a\xff\xfe\",\"time\":\"2026-11-23T03:00:00Z\",\"message\":\"\xed\xa0\x80 \xc3\",\"fields\":{\"k\":\"\xff\"}}",
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":{"esc":"\u00e9\n"} }`,
	// Keys: escaped, other case, Kelvin sign and long s fold to k and s.
	`{"\u0069d":"a","TIME":"2026-11-23T03:00:00Z","Kubernetes":{"POD":"p","Pod_Uid":"u"}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","\u212aubernetes":{"name\u017Fpace":"n"},"\u017Ftream":"x"}`,
	// Duplicates: the last wins; null keeps a string and empties a JSON column.
	`{"id":"a","id":"b","time":"2026-11-23T03:00:00Z","id":null,"fields":{"a":1},"fields":null}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":null,"fields":{"a":1}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"pod":"p"},"kubernetes":{"node":"n"}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"pod":"p"},"kubernetes":null,"kubernetes":{"node":"n"}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"pod":"p"},"kubernetes":null}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":[1]},"kubernetes":null}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":[1]},"kubernetes":{"labels":{}}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":null}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":null,"fields":null,"stream":null}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":{}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":{ "a" : [ 1 , 2 ] }}`,
	// Wrong types.
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":"x"}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":[]}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","fields":1}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":"x"}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":true}}`,
	// The watch's columns: workload, workload_kind, image, annotations (a JSON column).
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"namespace":"shop","pod":"cart-1","workload":"cart","workload_kind":"Deployment","image":"r/cart:1","labels":{"app":"cart"},"annotations":{"team":"pay"}}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"annotations":null,"workload":null}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"annotations":[1]}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"image":5}}`,
	`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"workload":"w","annotations":{"a":"b"}},"kubernetes":null}`,
	`{"id":true,"time":"2026-11-23T03:00:00Z"}`,
	`{"id":"a","time":1}`,
	`5`, `"s"`, `true`, `null`, ` null `, `[{}]`, `{}`, `{"id":"a"}`,
	// Times: fractions of any length, offsets, ranges, and what only time.Parse's slow path takes.
	`{"id":"a","time":"2026-11-23T03:00:00.123456789123Z"}`,
	`{"id":"a","time":"2026-11-23T03:00:00.1Z"}`,
	`{"id":"a","time":"2026-11-23T03:00:00.Z"}`,
	`{"id":"a","time":"2026-11-23T03:00:00,5Z"}`,
	`{"id":"a","time":"2026-11-23T03:00:00+09:00"}`,
	`{"id":"a","time":"2026-11-23T03:00:00.999999-23:59"}`,
	`{"id":"a","time":"2026-11-23T03:00:00+24:00"}`,
	`{"id":"a","time":"2026-11-23T3:00:00Z"}`,
	`{"id":"a","time":"2024-02-29T00:00:00Z"}`,
	`{"id":"a","time":"2023-02-29T00:00:00Z"}`,
	`{"id":"a","time":"0000-01-01T00:00:00Z"}`,
	`{"id":"a","time":"0000-02-29T23:59:59.999999999Z"}`,
	`{"id":"a","time":"9999-12-31T23:59:59Z"}`,
	`{"id":"a","time":"1969-12-31T23:59:59.9999995Z"}`,
	`{"id":"a","time":"2026-11-23T03:00:60Z"}`,
	`{"id":"a","time":"2026-11-23t03:00:00z"}`,
	`{"id":"a","time":"2026-11-23T03:00:00\u005a"}`,
	// Syntax errors.
	``, `{`, `{"id":"a",}`, `{"id":"a"}}`, `{"id" "a"}`, `{'id':'a'}`, `{"id":"a\x"}`, `{"id":"\u12"}`,
	`{"id":"a","n":1.}`, `{"id":"a","n":-}`, `{"id":"a","n":1e}`, `{"id":"a","n":01}`, `{"id":"a","n":[1 2]}`,
	`{"id":"a","n":nul}`, `{"id":"a","n":True}`, "{\"id\":\"a\x01\"}", "\xef\xbb\xbf{}",
}

func TestRowEncoderMatchesOracle(t *testing.T) {
	s, err := newRowSchema()
	if err != nil {
		t.Fatal(err)
	}
	enc, oracle := newRowEncoder(s), &oracleEncoder{s: s}
	for _, in := range oracleCases {
		row, err := enc.appendRow(nil, []byte(in))
		want, wantErr := oracle.appendRow(nil, []byte(in))
		switch {
		case (err != nil) != (wantErr != nil):
			t.Errorf("%q: err %v, encoding/json err %v", in, err, wantErr)
		case err != nil && !errors.Is(err, errMalformed):
			t.Errorf("%q: error %v is not errMalformed", in, err)
		case !bytes.Equal(row, want):
			t.Errorf("%q:\nrow           %x\nencoding/json %x", in, row, want)
		}
	}
}

// TestRowEncoderValues pins what a few corners decode to, beyond agreeing with the oracle.
func TestRowEncoderValues(t *testing.T) {
	s, md := schemaAndDescriptor(t)
	enc := newRowEncoder(s)
	f := func(in string, col []string, want any) {
		t.Helper()
		row, err := enc.appendRow(nil, []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(row, m); err != nil {
			t.Fatal(err)
		}
		if got := get(m, col...).Interface(); got != want {
			t.Errorf("%s: %s = %q, want %q", in, strings.Join(col, "."), got, want)
		}
	}
	const t0 = `"time":"2026-11-23T03:00:00Z"`
	f(`{"id":"\u0061\ud83d\ude00\ud800","message":"x",`+t0+`}`, []string{"id"}, "a😀\ufffd")
	f("{\"id\":\"a\xffb\","+t0+"}", []string{"id"}, "a\ufffdb")
	f(`{"ID":"a","KUBERNETES":{"Pod":"p"},`+t0+`}`, []string{"pod"}, "p")
	f(`{"id":"a","id":"b","id":null,`+t0+`}`, []string{"id"}, "b")
	f(`{"id":"a",`+t0+`,"fields":{ "k" : "\n" }}`, []string{"fields"}, `{ "k" : "\n" }`)
	f(`{"id":"a","time":"2026-11-23T12:00:00.0000019+09:00"}`, []string{"time"},
		time.Date(2026, 11, 23, 3, 0, 0, 1000, time.UTC).UnixMicro())
}

func TestParseMicros(t *testing.T) {
	f := func(in string) {
		t.Helper()
		got, err := parseMicros([]byte(in))
		want, wantErr := time.Parse(time.RFC3339Nano, in)
		if (err != nil) != (wantErr != nil) || err == nil && got != want.UnixMicro() {
			t.Errorf("%q: %d, %v; time.Parse: %d, %v", in, got, err, want.UnixMicro(), wantErr)
		}
	}
	for y := 0; y <= 9999; y += 37 {
		for _, md := range []string{"01-01", "02-28", "02-29", "03-01", "12-31"} {
			f(fmt.Sprintf("%04d-%sT23:59:59.999999999Z", y, md))
			f(fmt.Sprintf("%04d-%sT00:00:00-12:30", y, md))
		}
	}
	for _, in := range []string{"2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "1970-01-01T00:00:00Z",
		"1969-12-31T23:59:59.000001Z", "2026-11-23T03:00:00.+01:00", "2026-11-23T03:00:00.1234567891+01:00",
		"2026-13-01T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T03:60:00Z", "2026-11-23T03:00:00+01:60",
		"2026-11-23T03:00:00", "2026-11-23 03:00:00Z", "+026-11-23T03:00:00Z", ""} {
		f(in)
	}
}

func TestRowEncoderAllocs(t *testing.T) {
	s, err := newRowSchema()
	if err != nil {
		t.Fatal(err)
	}
	enc := newRowEncoder(s)
	data := []byte(`{"id":"a\u00e9","message":"\ud83d\ude00",` + envelopeJSON(3)[1:])
	buf, err := enc.appendRow(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = enc.appendRow(buf[:0], data) }); n != 0 {
		t.Errorf("%v allocations per row, want 0", n)
	}
}

func BenchmarkRowEncoder(b *testing.B) {
	s, err := newRowSchema()
	if err != nil {
		b.Fatal(err)
	}
	enc := newRowEncoder(s)
	data := []byte(envelopeJSON(42))
	var buf []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf, err = enc.appendRow(buf[:0], data)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// schemaAndDescriptor returns the row schema and the message descriptor rows decode with.
func schemaAndDescriptor(t *testing.T) (*rowSchema, protoreflect.MessageDescriptor) {
	t.Helper()
	s, err := newRowSchema()
	if err != nil {
		t.Fatal(err)
	}
	md, err := messageDescriptor(s.descriptor)
	if err != nil {
		t.Fatal(err)
	}
	return s, md
}
