package collector

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	k := &Kube{Namespace: "shop", Pod: "cart", PodUID: "u1", Container: "app", Node: "n1", Labels: map[string]string{"app": "cart"}}
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
	payload := enc.encodeBatch("pods", b, len(b.Records))
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
	if err := dec.decode(enc.encodeBatch("pods", b, len(b.Records)), &f); err != nil {
		t.Fatal(err)
	}
	if f.Records[0].Source != first {
		t.Error("source not reused across frames")
	}
}

func TestFrameUnroutedRecordsAreLeftOut(t *testing.T) {
	s := NewSource(1, "pods", nil)
	b := &Batch{Records: []Record{{Source: s, Message: []byte("keep")}, {Source: NewSource(2, "x", nil), Flags: flagUnrouted, Message: []byte("drop")}}}
	var enc frameEncoder
	var dec frameDecoder
	var f decodedFrame
	if err := dec.decode(enc.encodeBatch("pods", b, 1), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 1 || string(f.Records[0].Message) != "keep" {
		t.Fatalf("got %+v", f.Records)
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
	f.Add(append([]byte{}, enc.encodeBatch("pods", &Batch{Records: []Record{{Source: s, Message: []byte("m")}}, State: []StateEntry{{Key: "k", Value: []byte("v")}}}, 1)...))
	f.Add(encodeCheckpoint(nil, map[string]map[string][]byte{"x": {"k": []byte("v")}}))
	seeds, _ := filepath.Glob("testdata/frames/*")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var dec frameDecoder
		var fr decodedFrame
		if dec.decode(payload, &fr) == nil {
			for i := range fr.Records {
				fr.Records[i].AppendJSON(nil)
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
		enc.encodeBatch("pods", batch, len(batch.Records))
	}
}
