package buffer

import (
	"os"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 << 10, Checkpoint: func() []byte { return []byte("cp") }}
	b := openT(t, dir, opts)
	r, _ := b.Reader("pubsub")
	appendN(t, b, 0, 12, 1000) // 3 frames per segment: 4 segments
	fr := readN(t, r, 5)
	r.Ack(fr[4].End)
	closeT(t, b)
	segs := segmentFiles(t, dir)
	flipByte(t, segs[1], segmentHeaderSize+frameHeaderSize+2+frameHeaderSize+10) // second segment, first data frame
	f, err := os.OpenFile(segs[3], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{frameMagic0, frameMagic1, 1, 0, 9}); err != nil { // torn tail
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(segs[3])

	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(segs[3]); string(after) != string(before) {
		t.Fatal("Inspect changed a segment")
	}
	if len(rep.Segments) != 4 || rep.Segments[0].DataFrames != 3 || rep.Segments[1].DataFrames != 2 || !rep.Segments[0].Checkpoint {
		t.Fatalf("segments: %+v", rep.Segments)
	}
	if len(rep.Cursors) != 1 || rep.Cursors[0].Name != "pubsub" || rep.Cursors[0].Pos != fr[4].End || rep.Cursors[0].Err != "" {
		t.Fatalf("cursors: %+v", rep.Cursors)
	}
	if len(rep.Corruption) != 2 || rep.Corruption[0].Reason != "checksum mismatch" || !rep.Corruption[1].Tail || rep.Corruption[1].Length != 5 {
		t.Fatalf("corruption: %+v", rep.Corruption)
	}
	var sb strings.Builder
	if err := rep.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"00000000000000000001.seg", "pubsub", "checksum mismatch", "truncated at open", "CURSOR"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, sb.String())
		}
	}
	if testing.Verbose() {
		t.Log("\n" + sb.String())
	}
}
