package bigquery

import (
	"errors"
	"strings"
	"testing"

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
	f(`[]`, "cannot unmarshal array")
	f(`{"time":"2026-11-23T03:00:00Z"}`, "no id")
	f(`{"id":"a"}`, "time")
	f(`{"id":"a","time":"2026-11-23 03:00:00"}`, "time")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","fields":"x"}`, "fields is not a JSON object")
	f(`{"id":"a","time":"2026-11-23T03:00:00Z","kubernetes":{"labels":[1]}}`, "kubernetes.labels")
}

func TestRowEncoderNulls(t *testing.T) {
	s, err := newRowSchema()
	if err != nil {
		t.Fatal(err)
	}
	md, err := messageDescriptor(s.descriptor)
	if err != nil {
		t.Fatal(err)
	}
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

func FuzzRowEncoder(f *testing.F) {
	f.Add([]byte(envelopeJSON(1)))
	f.Add([]byte(`{"id":"a","time":"2026-11-23T03:00:00Z","fields":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{"id":"\u0000","time":"0001-01-01T00:00:00Z","kubernetes":{}}`))
	s, err := newRowSchema()
	if err != nil {
		f.Fatal(err)
	}
	md, err := messageDescriptor(s.descriptor)
	if err != nil {
		f.Fatal(err)
	}
	enc := newRowEncoder(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		row, err := enc.appendRow(nil, data)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		// Every accepted envelope is a row the Write API can decode.
		if err := proto.Unmarshal(row, dynamicpb.NewMessage(md)); err != nil {
			t.Fatalf("row does not decode: %v", err)
		}
	})
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
