package buffer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTripManySegments(t *testing.T) {
	f := func(name string, opts Options, n, size int) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := openT(t, dir, opts)
			defer closeT(t, b)
			r, err := b.Reader("local")
			if err != nil {
				t.Fatal(err)
			}
			want := appendN(t, b, 0, n, size)
			checkFrames(t, readN(t, r, n), want)
			expectNoFrame(t, r)
			if st := b.Stats(); st.Segments < 2 && opts.SegmentBytes < int64(n*size) {
				t.Fatalf("want several segments, got %d", st.Segments)
			}
		})
	}
	f("sync always, small segments", Options{SegmentBytes: 4 << 10}, 200, 300)
	f("sync interval, checkpoints", Options{SegmentBytes: 4 << 10, Sync: 5e6, Checkpoint: func() []byte { return []byte("cp") }}, 150, 500)
	f("frame fills a segment", Options{SegmentBytes: 4 << 10}, 20, 4<<10-segmentHeaderSize-frameHeaderSize)
	f("empty payloads", Options{}, 50, 0)
}

func TestRestartResumesCursor(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 << 10, Checkpoint: func() []byte { return []byte("state") }}
	b := openT(t, dir, opts)
	r, _ := b.Reader("pubsub")
	want := appendN(t, b, 0, 60, 200)
	got := readN(t, r, 25)
	r.Ack(got[19].End) // frames 20..24 are in flight when the process stops
	closeT(t, b)

	b = openT(t, dir, opts)
	defer closeT(t, b)
	if names := b.Readers(); !slices.Equal(names, []string{"pubsub"}) {
		t.Fatalf("Readers = %v", names)
	}
	r, _ = b.Reader("pubsub")
	checkFrames(t, readN(t, r, 40), want[20:])
	more := appendN(t, b, 60, 5, 200)
	checkFrames(t, readN(t, r, 5), more)
}

func TestSegmentDeletion(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 4 << 10})
	defer closeT(t, b)
	fast, _ := b.Reader("fast")
	slow, _ := b.Reader("slow")
	appendN(t, b, 0, 100, 300)
	segs := b.Stats().Segments

	frames := readN(t, fast, 100)
	fast.Ack(frames[99].End)
	b.retain()
	if got := b.Stats().Segments; got != segs {
		t.Fatalf("deleted segments while slow had read nothing: %d -> %d", segs, got)
	}
	sf := readN(t, slow, 50)
	slow.Ack(sf[49].End)
	b.retain()
	mid := b.Stats().Segments
	if mid >= segs || mid <= 1 {
		t.Fatalf("segments after slow acked half: %d (from %d)", mid, segs)
	}
	sf = readN(t, slow, 50)
	slow.Ack(sf[49].End)
	b.retain()
	if got := b.Stats().Segments; got != 1 {
		t.Fatalf("segments after all acked = %d, want 1 (the newest is kept)", got)
	}
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Fatalf("segment files = %d, want 1", got)
	}
}

func TestNoReadersDeletesNothing(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 4 << 10})
	defer closeT(t, b)
	appendN(t, b, 0, 100, 300)
	segs := b.Stats().Segments
	b.retain()
	if got := b.Stats().Segments; got != segs || segs < 5 {
		t.Fatalf("segments %d -> %d", segs, got)
	}
}

func TestBlockWhenFull(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10, WhenFull: Block})
	defer closeT(t, b)
	r, _ := b.Reader("cw")
	var want []appended
	for b.Stats().Bytes+1024 <= 16<<10 {
		want = append(want, appendN(t, b, len(want), 1, 1000)...)
	}
	type result struct {
		a   appended
		err error
	}
	done := make(chan result, 1)
	go func() {
		p := payloadN(len(want), 1000)
		tk, err := b.Append(context.Background(), p, 1)
		done <- result{appended{tk, p, 1}, err}
	}()
	waitFor(t, func() bool { return b.blocked.Load() == 1 })
	select {
	case res := <-done:
		t.Fatalf("Append returned while the buffer was full: %v", res.err)
	default:
	}
	frames := readN(t, r, len(want))
	r.Ack(frames[len(frames)-1].End)
	res := <-done
	if res.err != nil {
		t.Fatalf("Append after ack: %v", res.err)
	}
	res.a.count = 1
	checkFrames(t, readN(t, r, 1), []appended{res.a})

	// A blocked Append gives up with its context.
	for b.Stats().Bytes+1024 <= 16<<10 {
		appendN(t, b, 1000, 1, 1000)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, func() bool { return b.blocked.Load() == 1 })
		cancel()
	}()
	if _, err := b.Append(ctx, payloadN(0, 1000), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Append with cancelled ctx: %v", err)
	}
}

func TestDropOldest(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10, WhenFull: DropOldest,
		Checkpoint: func() []byte { return []byte("cp") }})
	defer closeT(t, b)
	lag, _ := b.Reader("lagging")
	want := appendN(t, b, 0, 200, 300)
	st := b.Stats()
	if st.Bytes > 16<<10+64 {
		t.Fatalf("buffer holds %d bytes, max 16KiB", st.Bytes)
	}
	rs := st.Readers[0]
	if rs.DroppedFrames == 0 {
		t.Fatal("nothing dropped")
	}
	rest := readN(t, lag, 200-int(rs.DroppedFrames))
	checkFrames(t, rest, want[rs.DroppedFrames:])
	expectNoFrame(t, lag)
	var records int64
	for _, a := range want[:rs.DroppedFrames] {
		records += int64(a.count)
	}
	if rs.DroppedRecords != records {
		t.Fatalf("dropped records %d, want %d", rs.DroppedRecords, records)
	}

	// A reader that acked part of the oldest segment loses only the rest of it.
	lag.Ack(rest[len(rest)-1].End)
	more := appendN(t, b, 200, 3, 300)
	got := readN(t, lag, 3)
	lag.Ack(got[0].End)
	before := b.Stats().Readers[0].DroppedFrames
	appendN(t, b, 203, 60, 300)
	if d := b.Stats().Readers[0].DroppedFrames - before; d < 2 {
		t.Fatalf("dropped %d more frames, want at least the 2 unacked", d)
	}
	_ = more
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Checkpoint: func() []byte { return []byte("cp") }}
	b := openT(t, dir, opts)
	want := appendN(t, b, 0, 10, 1000)
	closeT(t, b)
	seg := segmentFiles(t, dir)[0]

	// Half a frame: its header and part of its payload.
	var frame [frameHeaderSize + 1000]byte
	putHeader(frame[:], header{kind: KindData, length: 1000, count: 1}, payloadCRC(frame[frameHeaderSize:]))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(frame[:500]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	b = openT(t, dir, opts)
	defer closeT(t, b)
	if st := b.Stats(); st.TruncatedBytes != 500 || st.CorruptFrames != 0 {
		t.Fatalf("truncated %d corrupt %d, want 500 and 0", st.TruncatedBytes, st.CorruptFrames)
	}
	r, _ := b.Reader("local")
	checkFrames(t, readN(t, r, 10), want)
	more := appendN(t, b, 10, 2, 100)
	checkFrames(t, readN(t, r, 2), more)
}

func TestCorruptMiddleFrame(t *testing.T) {
	const size = 1000
	frameStart := func(i int) int64 { return segmentHeaderSize + int64(i)*(frameHeaderSize+size) }
	f := func(name string, off int64) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := openT(t, dir, Options{})
			want := appendN(t, b, 0, 10, size)
			closeT(t, b)
			flipByte(t, segmentFiles(t, dir)[0], off)

			b = openT(t, dir, Options{})
			defer closeT(t, b)
			if st := b.Stats(); st.CorruptFrames != 1 || st.TruncatedBytes != 0 {
				t.Fatalf("corrupt %d truncated %d, want 1 and 0", st.CorruptFrames, st.TruncatedBytes)
			}
			r, _ := b.Reader("local")
			checkFrames(t, readN(t, r, 9), append(want[:4:4], want[5:]...))
			expectNoFrame(t, r)
			if rs := b.Stats().Readers[0]; rs.CorruptFrames != 1 {
				t.Fatalf("reader skipped %d corrupt frames, want 1", rs.CorruptFrames)
			}
		})
	}
	f("payload byte", frameStart(4)+frameHeaderSize+100)
	f("magic", frameStart(4))
	f("kind", frameStart(4)+2)
	f("length", frameStart(4)+5)
	f("length low byte", frameStart(4)+4)
	f("crc", frameStart(4)+9)
	f("count", frameStart(4)+12)
	f("time", frameStart(4)+20)
}

func TestTruncatedSegment(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 8 << 10})
	want := appendN(t, b, 0, 30, 1000) // 7 frames per segment
	closeT(t, b)
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("want 4+ segments, got %d", len(segs))
	}
	// Cut the second segment inside its fourth frame.
	cut := int64(segmentHeaderSize + 3*(frameHeaderSize+1000) + 100)
	if err := os.Truncate(segs[1], cut); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir, Options{SegmentBytes: 8 << 10})
	defer closeT(t, b)
	if st := b.Stats(); st.TruncatedBytes != 100 {
		t.Fatalf("truncated %d, want 100", st.TruncatedBytes)
	}
	r, _ := b.Reader("local")
	kept := append(slices.Clone(want[:10]), want[14:]...)
	checkFrames(t, readN(t, r, len(kept)), kept)
	expectNoFrame(t, r)
}

func TestCursorFileDamage(t *testing.T) {
	f := func(name string, damage func(path string) error, corrupt int) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := openT(t, dir, Options{SegmentBytes: 4 << 10})
			r, _ := b.Reader("s1")
			want := appendN(t, b, 0, 30, 300)
			got := readN(t, r, 20)
			r.Ack(got[19].End)
			closeT(t, b)
			if err := damage(filepath.Join(dir, "cursors", "s1")); err != nil {
				t.Fatal(err)
			}
			b = openT(t, dir, Options{SegmentBytes: 4 << 10})
			defer closeT(t, b)
			if st := b.Stats(); st.CorruptCursors != corrupt {
				t.Fatalf("corrupt cursors %d, want %d", st.CorruptCursors, corrupt)
			}
			r, _ = b.Reader("s1")
			checkFrames(t, readN(t, r, 30), want) // from the oldest frame: duplicates, no loss
		})
	}
	f("missing", os.Remove, 0)
	f("garbage", func(p string) error { return os.WriteFile(p, []byte("not a cursor"), 0o644) }, 1)
	f("flipped bit", func(p string) error { flipByte(t, p, 10); return nil }, 1)
	f("past the end", func(p string) error { return os.WriteFile(p, encodeCursor(Position{Segment: 99, Offset: 16}), 0o644) }, 0)
}

func TestRecover(t *testing.T) {
	type event struct {
		kind Kind
		data string
	}
	f := func(name string, withCheckpoint bool, corruptNewestCheckpoint bool, wantFirst event, wantFrames int) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			n := 0
			opts := Options{SegmentBytes: 4 << 10}
			if withCheckpoint {
				opts.Checkpoint = func() []byte { n++; return []byte("cp-" + strconv.Itoa(n)) }
			}
			b := openT(t, dir, opts)
			appendN(t, b, 0, 30, 1000) // 3 frames per segment: 10 segments
			closeT(t, b)
			segs := segmentFiles(t, dir)
			if corruptNewestCheckpoint {
				flipByte(t, segs[len(segs)-1], segmentHeaderSize+frameHeaderSize)
			}
			b = openT(t, dir, opts)
			defer closeT(t, b)
			var got []event
			err := b.Recover(func(k Kind, p []byte) error {
				got = append(got, event{k, string(trim(p))})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0] != wantFirst || len(got) != wantFrames {
				t.Fatalf("replayed %d frames starting %v, want %d starting %v", len(got), got[:min(1, len(got))], wantFrames, wantFirst)
			}
			if got[len(got)-1].data != "frame-000029|" {
				t.Fatalf("last replayed %v", got[len(got)-1])
			}
		})
	}
	f("newest checkpoint", true, false, event{KindCheckpoint, "cp-10"}, 4)
	f("newest checkpoint corrupt", true, true, event{KindCheckpoint, "cp-9"}, 7)
	f("no checkpoints", false, false, event{KindData, "frame-000000|"}, 30)

	// An error from fn stops the replay.
	dir := t.TempDir()
	b := openT(t, dir, Options{})
	appendN(t, b, 0, 3, 10)
	stop := errors.New("stop")
	if err := b.Recover(func(Kind, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Recover = %v", err)
	}
	closeT(t, b)
}

func TestWaitDurable(t *testing.T) {
	for _, tc := range []struct {
		name string
		sync int64
	}{{"always", 0}, {"interval", 2e6}, {"long interval", 3600e9}} {
		t.Run(tc.name, func(t *testing.T) {
			b := openT(t, t.TempDir(), Options{Sync: time.Duration(tc.sync)})
			a := appendN(t, b, 0, 5, 100)
			if tc.sync < 3600e9 {
				durableT(t, b, a)
				if st := b.Stats(); st.Durable.Less(a[4].ticket.end) {
					t.Fatalf("durable %v before ticket %v", st.Durable, a[4].ticket.end)
				}
				closeT(t, b)
				return
			}
			// With an hour between syncs, Close is what makes the frames durable.
			errc := make(chan error, 1)
			go func() { errc <- b.WaitDurable(context.Background(), a[4].ticket) }()
			closeT(t, b)
			if err := <-errc; err != nil {
				t.Fatalf("WaitDurable across Close: %v", err)
			}
		})
	}
}

func TestConcurrentAppendersOneReader(t *testing.T) {
	b := openT(t, t.TempDir(), Options{SegmentBytes: 16 << 10, Sync: 1e6})
	defer closeT(t, b)
	r, _ := b.Reader("r")
	const writers, each = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := []byte{byte(w), byte(i)}
				tk, err := b.Append(context.Background(), p, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if err := b.WaitDurable(context.Background(), tk); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	next := make([]int, writers)
	acks := make(chan Position, writers*each)
	var ackWG sync.WaitGroup
	ackWG.Add(1)
	go func() { // another goroutine acks, as a sink's send loop would
		defer ackWG.Done()
		for p := range acks {
			r.Ack(p)
		}
	}()
	for range writers * each {
		f, err := r.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		w, i := int(f.Data[0]), int(f.Data[1])
		if i != next[w] {
			t.Fatalf("writer %d: got frame %d, want %d", w, i, next[w])
		}
		next[w]++
		acks <- f.End
	}
	close(acks)
	ackWG.Wait()
	wg.Wait()
}

func TestAppendErrors(t *testing.T) {
	b := openT(t, t.TempDir(), Options{SegmentBytes: 8 << 10})
	if _, err := b.Append(context.Background(), make([]byte, 8<<10), 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
	if _, err := b.Append(context.Background(), nil, -1); err == nil {
		t.Fatal("negative count accepted")
	}
	closeT(t, b)
	if _, err := b.Append(context.Background(), nil, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{WhenFull: 7}); err == nil {
		t.Fatal("bad policy accepted")
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{})
	defer closeT(t, b)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestReaderLifecycle(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 4 << 10})
	a, _ := b.Reader("pub/sub:a")
	same, _ := b.Reader("pub/sub:a")
	if a != same {
		t.Fatal("Reader returned a second handle for one name")
	}
	c, _ := b.Reader("c")
	if err := b.persistCursors(); err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 0, 40, 300)
	segs := b.Stats().Segments
	if err := b.RemoveReader("pub/sub:a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Next(testCtx(t)); !errors.Is(err, ErrReaderRemoved) {
		t.Fatalf("Next of removed reader: %v", err)
	}
	fr := readN(t, c, 40)
	c.Ack(fr[39].End)
	b.retain()
	if got := b.Stats().Segments; got != 1 || segs < 3 {
		t.Fatalf("segments %d -> %d after the remaining reader acked all", segs, got)
	}
	closeT(t, b)

	b = openT(t, dir, Options{SegmentBytes: 4 << 10})
	if got := b.Readers(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("Readers after reopen = %v", got)
	}
	c, _ = b.Reader("c")
	done := make(chan error, 1)
	go func() {
		_, err := c.Next(context.Background())
		done <- err
	}()
	closeT(t, b)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next across Close: %v", err)
	}
}

func TestCursorFileNames(t *testing.T) {
	for _, name := range []string{"local", "pubsub-1", "a.b", ".hidden", "../x", "pub/sub", "%41", "ünï", "a b"} {
		file := cursorFileName(name)
		if strings.ContainsAny(file, "/ ") || strings.HasPrefix(file, ".") {
			t.Errorf("%q -> unsafe file name %q", name, file)
		}
		if back, ok := readerName(file); !ok || back != name {
			t.Errorf("%q -> %q -> %q, %v", name, file, back, ok)
		}
	}
}

func TestStatsLag(t *testing.T) {
	b := openT(t, t.TempDir(), Options{SegmentBytes: 4 << 10})
	defer closeT(t, b)
	r, _ := b.Reader("r")
	a := appendN(t, b, 0, 20, 300)
	st := b.Stats()
	rs := st.Readers[0]
	if rs.LagBytes != st.Bytes || rs.Oldest.IsZero() {
		t.Fatalf("unread reader: lag %d of %d bytes, oldest %v", rs.LagBytes, st.Bytes, rs.Oldest)
	}
	fr := readN(t, r, 20)
	r.Ack(fr[9].End)
	rs = b.Stats().Readers[0]
	if rs.Oldest != fr[10].Time {
		t.Fatalf("oldest %v, want frame 10's %v", rs.Oldest, fr[10].Time)
	}
	r.Ack(fr[19].End)
	rs = b.Stats().Readers[0]
	if rs.LagBytes != 0 || !rs.Oldest.IsZero() || rs.Acked != a[19].ticket.end {
		t.Fatalf("caught up: lag %d oldest %v acked %v", rs.LagBytes, rs.Oldest, rs.Acked)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not reached before the deadline")
		default:
			runtime.Gosched()
		}
	}
}

// TestParkReader: a parked reader (a sink removed from the config) holds no segment, keeps its
// cursor aside across a restart, and a reader of that name resumes there while the frames are
// retained, else at the oldest retained frame.
func TestParkReader(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 4 << 10})
	gone, _ := b.Reader("gone")
	stay, _ := b.Reader("stay")
	app := appendN(t, b, 0, 40, 300)
	durableT(t, b, app)
	fr := readN(t, gone, 10)
	gone.Ack(fr[9].End)
	if err := b.ParkReader("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Next(testCtx(t)); !errors.Is(err, ErrReaderRemoved) {
		t.Fatalf("Next of a parked reader: %v", err)
	}
	if got := b.Readers(); !slices.Equal(got, []string{"stay"}) {
		t.Fatalf("Readers = %v", got)
	}
	closeT(t, b)
	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cursors) != 2 || rep.Cursors[0].Name != "gone" || !rep.Cursors[0].Parked || rep.Cursors[0].Pos != fr[9].End || rep.Cursors[1].Parked {
		t.Errorf("inspect cursors %+v", rep.Cursors)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "parked: sink not configured") {
		t.Errorf("inspect text:\n%s", text.String())
	}

	// Across a restart the parked cursor is not a reader, and comes back with its name.
	b = openT(t, dir, Options{SegmentBytes: 4 << 10})
	if got := b.Readers(); !slices.Equal(got, []string{"stay"}) {
		t.Fatalf("Readers after reopen = %v", got)
	}
	back, _ := b.Reader("gone")
	next := readN(t, back, 1)
	checkFrames(t, next, app[10:11])
	if err := b.ParkReader("gone"); err != nil {
		t.Fatal(err)
	}
	// It holds nothing: once "stay" passed them, the segments go.
	stay, _ = b.Reader("stay")
	all := readN(t, stay, 40)
	stay.Ack(all[39].End)
	b.retain()
	if got := b.Stats().Segments; got != 1 {
		t.Fatalf("segments after the remaining reader acked all: %d, want 1", got)
	}
	// The frames after its cursor that were deleted are lost to it: it resumes at the oldest
	// retained frame, never at one it had acked.
	oldest := b.segments[0].id
	back, _ = b.Reader("gone")
	got := readN(t, back, 1)
	if got[0].End.Segment != oldest || !next[0].End.Less(got[0].End) {
		t.Fatalf("resumed at %v, want the first frame of segment %d (after %v)", got[0].End, oldest, next[0].End)
	}
	closeT(t, b)
}

// OnDrop hands over exactly the frames a reader loses, from its acked cursor on: the same
// payloads, in order, that it would have read.
func TestOnDropSeesTheLostFrames(t *testing.T) {
	var lost []appended
	b := openT(t, t.TempDir(), Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10, WhenFull: DropOldest,
		OnDrop: func(d Drop) {
			var frames, records int64
			err := d.Each(func(p []byte, count int) error {
				lost = append(lost, appended{payload: append([]byte(nil), p...), count: count})
				frames++
				records += int64(count)
				return nil
			})
			if err != nil || d.Reader != "lagging" || frames != d.Frames || records != d.Records {
				t.Errorf("drop for %s: %d frames, %d records seen (err %v); drop says %d, %d",
					d.Reader, frames, records, err, d.Frames, d.Records)
			}
		}})
	defer closeT(t, b)
	lag, _ := b.Reader("lagging")
	first := appendN(t, b, 0, 5, 300)
	got := readN(t, lag, 2)
	lag.Ack(got[1].End) // acked part of the oldest segment: loses only the rest
	want := appendN(t, b, 5, 200, 300)
	want = append(first[2:], want...)
	dropped := b.Stats().Readers[0].DroppedFrames
	if dropped == 0 || int64(len(lost)) != dropped {
		t.Fatalf("OnDrop saw %d frames, the reader lost %d", len(lost), dropped)
	}
	for i, l := range lost {
		if string(l.payload) != string(want[i].payload) || l.count != want[i].count {
			t.Fatalf("lost frame %d: %.12q (%d records), want %.12q (%d)", i, l.payload, l.count, want[i].payload, want[i].count)
		}
	}
}

// ScanFrames reads from a position on without the lock, while the buffer is open.
func TestScanFramesFrom(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, Options{SegmentBytes: 4 << 10, Checkpoint: func() []byte { return []byte("cp") }})
	defer closeT(t, b)
	want := appendN(t, b, 0, 40, 300)
	if err := b.WaitDurable(testCtx(t), want[39].ticket); err != nil {
		t.Fatal(err)
	}
	from := want[10].ticket.end // after frame 10, in some segment past the first
	var got []string
	err := ScanFrames(dir, from, func(f Frame) error {
		got = append(got, string(f.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 29 {
		t.Fatalf("scanned %d frames after frame 10, want 29", len(got))
	}
	for i, g := range got {
		if g != string(want[11+i].payload) {
			t.Fatalf("frame %d: %.12q, want %.12q", i, g, want[11+i].payload)
		}
	}
}
