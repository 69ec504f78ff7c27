package collector

import (
	"slices"
	"testing"

	"github.com/tailgate-dev/tailgate/buffer"
)

// TestAckTrackerReleasesDoneFramesOutOfOrder: a frame whose batches are all acknowledged gives
// its memory back at once, even while an earlier frame still waits for a batch; the cursor
// moves only over the contiguous done prefix.
func TestAckTrackerReleasesDoneFramesOutOfOrder(t *testing.T) {
	buf, err := buffer.Open(t.TempDir(), buffer.Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	rd, err := buf.Reader("s")
	if err != nil {
		t.Fatal(err)
	}
	var released []int
	tr := ackTracker{reader: rd}
	ends := map[*trackedFrame]int{}
	tr.done = func(f *trackedFrame) { released = append(released, ends[f]) }
	acked := func() int64 {
		for _, r := range buf.Stats().Readers {
			if r.Name == "s" {
				return r.Acked.Offset
			}
		}
		t.Fatal("reader s not in stats")
		return 0
	}

	frames := make([]*trackedFrame, 3)
	for i := range frames {
		frames[i] = tr.add(buffer.Position{Segment: 1, Offset: int64(100 * (i + 1))})
		ends[frames[i]] = i
		tr.addBatch(frames[i], true)
		tr.seal(frames[i])
	}
	start := acked()

	tr.batchDone(frames[2], true) // the last frame is done first: released, cursor stays
	tr.batchDone(frames[1], true)
	if want := []int{2, 1}; !slices.Equal(released, want) {
		t.Fatalf("released %v, want %v", released, want)
	}
	if got := acked(); got != start {
		t.Fatalf("cursor moved to %d while frame 0 waits", got)
	}
	tr.batchDone(frames[0], true)
	if want := []int{2, 1, 0}; !slices.Equal(released, want) {
		t.Fatalf("released %v, want %v", released, want)
	}
	if got := acked(); got != 300 {
		t.Fatalf("cursor at %d, want 300 (the last frame's end)", got)
	}
	if len(tr.queue) != 0 {
		t.Fatalf("%d frames still queued", len(tr.queue))
	}

	// A frame whose batches hold copies of its records is released when sealed; the cursor
	// still waits for those batches.
	copied := tr.add(buffer.Position{Segment: 1, Offset: 350})
	ends[copied] = 4
	tr.addBatch(copied, false)
	tr.seal(copied)
	if released[len(released)-1] != 4 || acked() != 300 {
		t.Fatalf("copied frame: released %v, cursor %d, want it released and the cursor at 300", released, acked())
	}
	tr.batchDone(copied, false)
	if acked() != 350 || len(released) != 4 {
		t.Fatalf("copied frame done: cursor %d (want 350), released %v (want it once)", acked(), released)
	}

	// A frame none of whose records went to a batch is released when sealed.
	empty := tr.add(buffer.Position{Segment: 1, Offset: 400})
	ends[empty] = 5
	tr.seal(empty)
	if released[len(released)-1] != 5 || acked() != 400 {
		t.Fatalf("empty frame: released %v, cursor %d", released, acked())
	}
}
