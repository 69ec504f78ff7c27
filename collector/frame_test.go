package collector

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	k := &Kube{Namespace: "shop", Pod: "cart-7d9f-x2", PodUID: "u1", Container: "app", Node: "n1", Labels: map[string]string{"app": "cart"},
		Workload: "cart", WorkloadKind: "Deployment", Image: "shop/cart:1.2", Annotations: map[string]string{"team": "payments"}}
	s1, s2 := NewSource(10, "pods", k), NewSource(20, "apps", nil)
	b := &Batch{
		Records: []Record{
			{Source: s1, Time: 1, ID: MakeID(10, 0), Stream: StreamStdout, Message: []byte("one")},
			{Source: s2, Time: 2, ID: MakeID(20, 5), Stream: StreamApp, Flags: FlagTruncated, Message: []byte("two"), Tag: []byte("t"), Fields: []byte(`{"a":1}`)},
			{Source: s1, Time: 3, ID: MakeID(10, 4), Stream: StreamStderr, Message: []byte("")},
		},
		State: []StateEntry{{Key: "f1", Value: []byte{1, 2}}, {Key: "gone"}},
	}
	var enc frameEncoder
	payload := enc.encodeBatch("pods", nil, b)
	var dec frameDecoder
	var f decodedFrame
	if err := dec.decode(payload, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 3 || len(f.State) != 2 {
		t.Fatalf("decoded %d records, %d states", len(f.Records), len(f.State))
	}
	for i, want := range b.Records {
		got := f.Records[i]
		if !bytes.Equal(got.AppendJSON(nil), want.AppendJSON(nil)) {
			t.Errorf("record %d:\n got %s\nwant %s", i, got.AppendJSON(nil), want.AppendJSON(nil))
		}
		if got.Flags != want.Flags {
			t.Errorf("record %d flags %d, want %d", i, got.Flags, want.Flags)
		}
	}
	if f.Records[0].Source != f.Records[2].Source {
		t.Error("records of one source decode to different *Source")
	}
	if st := f.State[0]; st.Input != "pods" || st.Key != "f1" || !bytes.Equal(st.Value, []byte{1, 2}) {
		t.Errorf("state 0 = %+v", st)
	}
	if st := f.State[1]; st.Key != "gone" || st.Value != nil {
		t.Errorf("state 1 = %+v, want a deletion", st)
	}
	// A second frame with the same source reuses the decoded source.
	first := f.Records[0].Source
	if got := *f.Records[0].Source.Kube(); !reflect.DeepEqual(got, *k) {
		t.Errorf("kube decoded as %+v, want %+v", got, *k)
	}
	if err := dec.decode(enc.encodeBatch("pods", nil, b), &f); err != nil {
		t.Fatal(err)
	}
	if f.Records[0].Source != first {
		t.Error("source not reused across frames")
	}
}

func TestFrameUnroutedRecordsAreLeftOut(t *testing.T) {
	s := NewSource(1, "pods", nil)
	b := &Batch{Records: []Record{{Source: s, Message: []byte("keep")}, {Source: NewSource(2, "x", nil), Message: []byte("drop")}}}
	enc := frameEncoder{masks: []uint64{1, 0}}
	var dec frameDecoder
	var f decodedFrame
	if err := dec.decode(enc.encodeBatch("pods", []string{"a"}, b), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 1 || string(f.Records[0].Message) != "keep" {
		t.Fatalf("got %+v", f.Records)
	}
}

// TestFrameSectionsBySink: each sink's decoder returns exactly the records routed to it, in
// their original order, and skips the rest; a decoder without a sink gets them all.
func TestFrameSectionsBySink(t *testing.T) {
	a, bsrc, c := NewSource(1, "pods", nil), NewSource(2, "pods", nil), NewSource(3, "apps", nil)
	var recs []Record
	var masks []uint64
	for i := range 12 {
		src, mask := a, uint64(0b001)
		switch i % 3 {
		case 1:
			src, mask = bsrc, 0b011
		case 2:
			src, mask = c, 0b110
		}
		recs = append(recs, Record{Source: src, ID: MakeID(src.Key, uint64(i)), Message: []byte{byte('a' + i)}})
		masks = append(masks, mask)
	}
	enc := frameEncoder{masks: masks}
	payload := append([]byte{}, enc.encodeBatch("pods", []string{"file", "pubsub", "cw"}, &Batch{Records: recs})...)
	f := func(sink, want string) {
		t.Helper()
		dec := frameDecoder{sink: sink}
		var fr decodedFrame
		if err := dec.decode(payload, &fr); err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, r := range fr.Records {
			got += string(r.Message)
		}
		// Order within a source is kept; sections group by mask.
		if got != want {
			t.Errorf("sink %q got %q, want %q", sink, got, want)
		}
		if fr.Routed != (sink != "") {
			t.Errorf("sink %q: Routed = %v", sink, fr.Routed)
		}
	}
	f("file", "adgjbehk")
	f("pubsub", "behkcfil")
	f("cw", "cfil")
	f("gone", "")
	f("", "adgjbehkcfil")
}

// TestFrameVersion1StillDecodes: frames written before route sections existed (a buffer left by
// an older binary) decode whole, with Routed false so the reader routes them itself.
func TestFrameVersion1StillDecodes(t *testing.T) {
	payload, err := os.ReadFile("testdata/frames/v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	dec := frameDecoder{sink: "file"}
	var f decodedFrame
	if err := dec.decode(payload, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 3 || f.Routed || len(f.State) != 2 {
		t.Fatalf("decoded %d records (routed %v), %d states", len(f.Records), f.Routed, len(f.State))
	}
	want := `{"id":"000000000000000a0000000000000000","time":"1970-01-01T00:00:00.000000001Z","stream":"stdout","message":"one","source":"pods","tag":"","kubernetes":{"namespace":"shop","pod":"cart","pod_uid":"u1","container":"app","node":"n1","labels":{"app":"cart"}},"fields":{}}`
	if got := string(f.Records[0].AppendJSON(nil)); got != want {
		t.Errorf("record 0:\n got %s\nwant %s", got, want)
	}
	if string(f.Records[1].Fields) != `{"a":1}` || f.Records[1].Flags != FlagTruncated {
		t.Errorf("record 1 = %+v", f.Records[1])
	}
}

// TestFrameStateOnlySkipsRecords: recovery reads positions without decoding records.
func TestFrameStateOnlySkipsRecords(t *testing.T) {
	s := NewSource(1, "pods", nil)
	var enc frameEncoder
	payload := enc.encodeBatch("pods", []string{"a"}, &Batch{Records: []Record{{Source: s, Message: []byte("m")}}, State: []StateEntry{{Key: "k", Value: []byte("v")}}})
	dec := frameDecoder{stateOnly: true}
	var f decodedFrame
	if err := dec.decode(payload, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 0 || len(f.State) != 1 || string(f.State[0].Value) != "v" {
		t.Fatalf("got %d records, states %+v", len(f.Records), f.State)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	state := map[string]map[string][]byte{"pods": {"a": []byte("1"), "b": []byte("2")}, "apps": {"c": []byte("3")}}
	var dec frameDecoder
	var f decodedFrame
	if err := dec.decode(encodeCheckpoint(nil, state), &f); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, s := range f.State {
		if got[s.Input] == nil {
			got[s.Input] = map[string]string{}
		}
		got[s.Input][s.Key] = string(s.Value)
	}
	if len(got) != 2 || got["pods"]["a"] != "1" || got["pods"]["b"] != "2" || got["apps"]["c"] != "3" {
		t.Fatalf("got %v", got)
	}
}

func FuzzFrameDecode(f *testing.F) {
	var enc frameEncoder
	s := NewSource(1, "pods", &Kube{Namespace: "n", Labels: map[string]string{"a": "b"}})
	f.Add(append([]byte{}, enc.encodeBatch("pods", []string{"a", "b"}, &Batch{Records: []Record{{Source: s, Message: []byte("m")}}, State: []StateEntry{{Key: "k", Value: []byte("v")}}})...))
	f.Add(encodeCheckpoint(nil, map[string]map[string][]byte{"x": {"k": []byte("v")}}))
	seeds, _ := filepath.Glob("testdata/frames/*")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, dec := range []frameDecoder{{}, {sink: "a"}, {stateOnly: true}} {
			var fr decodedFrame
			if dec.decode(payload, &fr) == nil {
				for i := range fr.Records {
					fr.Records[i].AppendJSON(nil)
				}
			}
		}
	})
}

func BenchmarkFrameEncode(b *testing.B) {
	s := NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	batch := &Batch{Records: make([]Record, 2000)}
	msg := bytes.Repeat([]byte("x"), 250)
	for i := range batch.Records {
		batch.Records[i] = Record{Source: s, Time: int64(i), ID: MakeID(1, uint64(i)), Stream: StreamStdout, Message: msg}
	}
	var enc frameEncoder
	b.ReportAllocs()
	b.SetBytes(int64(len(batch.Records) * len(msg)))
	for b.Loop() {
		enc.encodeBatch("pods", []string{"file"}, batch)
	}
}

// BenchmarkFrameDecodeFanout is one frame of 2,000 records routed a third to each of three
// sinks, decoded by each sink's reader: "every-record" is what a reader did before route
// sections (decode all, then route per record), "own-section" skips the other sinks' sections.
func BenchmarkFrameDecodeFanout(b *testing.B) {
	sinks := []string{"local", "pubsub", "cw"}
	srcs := []*Source{
		NewSource(1, "pods", &Kube{Namespace: "shop", Pod: "cart", Container: "app"}),
		NewSource(2, "pods", &Kube{Namespace: "kube-system", Pod: "dns", Container: "coredns"}),
		NewSource(3, "pods", &Kube{Namespace: "search", Pod: "idx", Container: "app"}),
	}
	batch := &Batch{Records: make([]Record, 2000)}
	masks := make([]uint64, len(batch.Records))
	msg := bytes.Repeat([]byte("x"), 250)
	for i := range batch.Records {
		batch.Records[i] = Record{Source: srcs[i%3], Time: int64(i), ID: MakeID(uint64(i%3), uint64(i)), Stream: StreamStdout, Message: msg}
		masks[i] = 1 << (i % 3)
	}
	enc := frameEncoder{masks: masks}
	payload := append([]byte{}, enc.encodeBatch("pods", sinks, batch)...)
	routeOf := map[*Source]uint64{}
	b.Run("every-record", func(b *testing.B) {
		decs := make([]frameDecoder, len(sinks))
		var f decodedFrame
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			for s := range sinks {
				if err := decs[s].decode(payload, &f); err != nil {
					b.Fatal(err)
				}
				n := 0
				for i := range f.Records {
					m, ok := routeOf[f.Records[i].Source]
					if !ok {
						m = 1 << (f.Records[i].Source.Key - 1)
						routeOf[f.Records[i].Source] = m
					}
					if m&(1<<s) != 0 {
						n++
					}
				}
			}
		}
	})
	b.Run("own-section", func(b *testing.B) {
		decs := make([]frameDecoder, len(sinks))
		for s := range decs {
			decs[s].sink = sinks[s]
		}
		var f decodedFrame
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			for s := range sinks {
				if err := decs[s].decode(payload, &f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
