package buffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Reader is one consumer's cursor. Next is called from one goroutine; Ack may be called from
// another. Several frames may be outstanding between Next and Ack.
type Reader struct {
	b    *Buffer
	name string

	// Owned by the goroutine calling Next.
	pos Position
	// readMark is pos packed for other readers (see evictRead).
	readMark atomic.Uint64

	fileMu   sync.Mutex // guards the read handle; Close takes it to close the file
	file     *os.File
	fileSeg  uint64
	fileShut bool
	hdr      [frameHeaderSize]byte // the header being read (a field: ReadAt's argument escapes)
	ahead    [frameHeaderSize]byte // the header after the last frame read, when it came along
	aheadOff int64                 // its offset in fileSeg, -1 when none
	scratch  []byte                // resync window, allocated on first damage
	evictOff int64                 // start in fileSeg of what was read and not yet evicted

	mu             sync.Mutex // guards the fields below
	acked          Position
	floor          Position // drop_oldest moved the cursor here; Next skips to it
	dirty          bool     // acked differs from the cursor file
	removed        bool
	droppedFrames  int64
	droppedRecords int64
	corrupt        int64
}

func (b *Buffer) newReader(name string, acked Position) *Reader {
	r := &Reader{b: b, name: name, pos: acked, acked: acked, aheadOff: -1}
	r.readMark.Store(packPos(acked))
	return r
}

// Reader returns the reader called name, creating it (and its cursor file) when new. A new
// reader starts at the oldest retained frame. Calling Reader twice with a name returns the
// same *Reader: one goroutine per reader calls Next.
func (b *Buffer) Reader(name string) (*Reader, error) {
	if name == "" {
		return nil, errors.New("buffer: empty reader name")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if r, ok := b.readers[name]; ok {
		return r, nil
	}
	start := b.unparkLocked(name)
	r := b.newReader(name, start)
	r.dirty = true
	b.readers[name] = r
	b.kickMaintenance()
	return r, nil
}

// Readers returns the names of the readers known: found on disk at Open or created since,
// sorted. The collector removes those no longer in its config with RemoveReader.
func (b *Buffer) Readers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readerNamesLocked()
}

// RemoveReader forgets a reader and deletes its cursor file, so it no longer holds segments.
// Its Next returns ErrReaderRemoved.
func (b *Buffer) RemoveReader(name string) error {
	b.mu.Lock()
	r := b.readers[name]
	delete(b.readers, name)
	if r != nil {
		r.mu.Lock()
		r.removed = true
		r.mu.Unlock()
	}
	close(b.durableCh) // wake its Next
	b.durableCh = make(chan struct{})
	b.mu.Unlock()
	if r != nil {
		r.closeFile()
	}

	b.persistMu.Lock()
	defer b.persistMu.Unlock()
	err := os.Remove(filepath.Join(b.curDir, cursorFileName(name)))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("buffer: remove reader %s: %w", name, err)
	}
	b.kickMaintenance()
	return syncDir(b.curDir)
}

// ParkReader forgets a reader like RemoveReader, so it no longer holds segments, but keeps its
// cursor aside (cursors/parked/): a reader of that name created later (the sink configured
// again) resumes there if those frames are still retained, else at the oldest retained
// frame. Its Next returns ErrReaderRemoved.
func (b *Buffer) ParkReader(name string) error {
	b.mu.Lock()
	r := b.readers[name]
	var acked Position
	if r != nil {
		r.mu.Lock()
		acked = r.acked
		r.mu.Unlock()
	}
	b.mu.Unlock()
	if r == nil {
		return nil
	}
	parked := filepath.Join(b.curDir, parkedDir)
	if err := os.MkdirAll(parked, 0o755); err != nil {
		return fmt.Errorf("buffer: park reader %s: %w", name, err)
	}
	if err := writeCursor(parked, name, acked); err != nil {
		return fmt.Errorf("buffer: park reader %s: %w", name, err)
	}
	if err := syncDir(parked); err != nil {
		return fmt.Errorf("buffer: park reader %s: %w", name, err)
	}
	return b.RemoveReader(name)
}

// parkedDir holds the cursors of parked readers, inside the cursor directory (Open loads only
// the regular files there).
const parkedDir = "parked"

// unparkLocked returns the parked cursor of name mapped into the retained segments and
// removes it (the caller writes the reader's own cursor); Position{} when there is none.
// Caller holds b.mu.
func (b *Buffer) unparkLocked(name string) Position {
	file := filepath.Join(b.curDir, parkedDir, cursorFileName(name))
	data, err := os.ReadFile(file)
	if err != nil {
		return Position{}
	}
	_ = os.Remove(file)
	p, err := decodeCursor(data)
	if err != nil {
		return Position{}
	}
	return b.normalizeCursor(name, p)
}

// Name is the reader's name.
func (r *Reader) Name() string { return r.name }

// Ack moves the reader's cursor to end, the End of a frame returned by Next. Acks must come in
// order; an end behind the cursor is ignored. The cursor file is written in the background at
// most once per sync interval, and on Close.
func (r *Reader) Ack(end Position) {
	r.mu.Lock()
	if r.acked.Less(end) {
		r.acked = end
		r.dirty = true
	}
	r.mu.Unlock()
	if r.b.blocked.Load() > 0 {
		r.b.kickMaintenance()
	}
}

// Next returns the next durable KindData frame after the previous one returned, waiting for
// one until ctx ends. Checkpoint and corrupt frames are skipped. It returns ErrClosed after
// Close and ErrReaderRemoved after RemoveReader.
func (r *Reader) Next(ctx context.Context) (Frame, error) { return r.next(ctx, true) }

// errNoFrame is next's answer when it must not wait and no frame is ready.
var errNoFrame = errors.New("no durable frame ready")

func (r *Reader) next(ctx context.Context, wait bool) (Frame, error) {
	b := r.b
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return Frame{}, ErrClosed
		}
		r.mu.Lock()
		removed, floor := r.removed, r.floor
		r.mu.Unlock()
		if removed {
			b.mu.Unlock()
			return Frame{}, ErrReaderRemoved
		}
		if r.pos.Less(floor) {
			r.pos = floor
		}
		var (
			segID  uint64
			limit  int64
			sealed bool
			found  bool
		)
		if i := b.segmentFrom(r.pos.Segment); i >= 0 {
			s := b.segments[i]
			found, segID = true, s.id
			if s.id != r.pos.Segment || r.pos.Offset < segmentHeaderSize {
				r.pos = Position{Segment: s.id, Offset: segmentHeaderSize}
			}
			switch {
			case s.id < b.durable.Segment:
				limit, sealed = s.size, true
			case s.id == b.durable.Segment:
				limit = b.durable.Offset
			}
		}
		ready := b.durableCh
		b.mu.Unlock()

		if found && r.pos.Offset < limit {
			f, ok, err := r.read(segID, limit)
			if errors.Is(err, os.ErrNotExist) {
				// Deleted under us (all readers passed it, or drop_oldest): move on.
				r.pos = Position{Segment: segID + 1}
				continue
			}
			if err != nil {
				return Frame{}, err
			}
			if ok {
				return f, nil
			}
			continue
		}
		if sealed {
			r.pos = Position{Segment: segID + 1}
			continue
		}
		if !wait {
			return Frame{}, errNoFrame
		}
		select {
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		case <-ready:
		case <-b.done:
		}
	}
}

// read reads the frame at r.pos in segment seg, not past limit, and advances r.pos past it (or
// past the damage). ok is true for a valid data frame.
func (r *Reader) read(seg uint64, limit int64) (Frame, bool, error) {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.fileShut {
		return Frame{}, false, ErrClosed
	}
	if r.file == nil || r.fileSeg != seg {
		if r.file != nil {
			_ = r.file.Close()
			r.file = nil
		}
		f, err := os.Open(r.b.segmentPath(seg))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Frame{}, false, err
			}
			return Frame{}, false, fmt.Errorf("reader %s: %w", r.name, err)
		}
		r.file, r.fileSeg, r.aheadOff, r.evictOff = f, seg, -1, 0
	}
	off := r.pos.Offset
	hb := &r.hdr
	reason := ""
	if r.aheadOff == off {
		*hb = r.ahead
	} else if off+frameHeaderSize > limit {
		reason = "short header"
	} else if _, err := r.file.ReadAt(hb[:], off); err != nil {
		return Frame{}, false, fmt.Errorf("reader %s: segment %s at %d: %w", r.name, segmentName(seg), off, err)
	}
	r.aheadOff = -1
	var h header
	if reason == "" {
		h, reason = parseHeader(hb[:])
	}
	end := off + frameHeaderSize + int64(h.length)
	if reason == "" && end > limit {
		reason = "bad length"
	}
	if reason == "" {
		n := int(h.length)
		want := n
		if end+frameHeaderSize <= limit {
			want += frameHeaderSize // bring the next header along: one pread per frame
		}
		buf := r.b.frameBuf(want)
		if _, err := r.file.ReadAt(buf, off+frameHeaderSize); err != nil && !(errors.Is(err, io.EOF)) {
			return Frame{}, false, fmt.Errorf("reader %s: segment %s at %d: %w", r.name, segmentName(seg), off, err)
		} else if err != nil {
			reason = "short payload"
		}
		if reason == "" && frameCRC(hb[:], payloadCRC(buf[:n])) != h.crc {
			reason = "checksum mismatch"
		}
		if reason == "" {
			if want > n {
				copy(r.ahead[:], buf[n:])
				r.aheadOff = end
			}
			r.pos = Position{Segment: seg, Offset: end}
			r.readMark.Store(packPos(r.pos))
			r.evictRead(seg, off, end)
			if h.kind != KindData {
				return Frame{}, false, nil
			}
			return Frame{
				Pos:   Position{Segment: seg, Offset: off},
				End:   r.pos,
				Count: int(h.count),
				Time:  time.Unix(0, h.time),
				Data:  buf[:n],
			}, true, nil
		}
	}
	return Frame{}, false, r.skipDamage(seg, off, limit, reason)
}

// skipDamage moves r.pos from a bad frame at off to the next valid frame before limit, or to
// limit. Caller holds fileMu.
func (r *Reader) skipDamage(seg uint64, off, limit int64, reason string) error {
	if r.scratch == nil {
		r.scratch = make([]byte, 256<<10)
	}
	w := &window{r: r.file, size: limit, buf: r.scratch}
	next, _, err := w.resync(off + 1)
	if err != nil {
		return fmt.Errorf("reader %s: segment %s: %w", r.name, segmentName(seg), err)
	}
	if next < 0 {
		next = limit
	}
	r.pos = Position{Segment: seg, Offset: next}
	r.mu.Lock()
	r.corrupt++
	r.mu.Unlock()
	r.b.warn.Warn("corrupt:"+r.name, "reader skipped a corrupt frame", "sink", r.name, "segment", segmentName(seg),
		"offset", off, "bytes", next-off, "reason", reason)
	return nil
}

// closeFile releases the read handle; Next returns ErrClosed afterwards.
func (r *Reader) closeFile() {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	r.fileShut = true
	if r.file != nil {
		_ = r.file.Close()
		r.file = nil
	}
}

// packPos packs a position into one word: 24 bits of segment, 40 of offset (1 TiB).
func packPos(p Position) uint64 { return p.Segment<<40 | uint64(p.Offset)&(1<<40-1) }

// evictRead drops what the reader has read of segment seg up to end (the frame at off is the
// last), a few MiB at a time, from the page cache once every reader has read it.
// The frames were synced before any reader saw them, so the pages are clean and go at once.
// An agent appends far more than it keeps: recycling the pages right away, instead of letting
// gigabytes of segments fill the cache until their files are deleted, saves most of the
// kernel's cost of the writes (fresh page allocation). A reader that falls behind would read
// from disk; it never does here, because the last reader to pass a range is the one evicting it.
func (r *Reader) evictRead(seg uint64, off, end int64) {
	if r.evictOff > off {
		r.evictOff = off // a new segment file (evictOff is reset with it) or a resync
	}
	if end-r.evictOff < evictBatch {
		return // one fadvise per few MiB instead of per frame
	}
	start := r.evictOff
	r.evictOff = end
	mark := packPos(Position{Segment: seg, Offset: end})
	b := r.b
	b.mu.Lock()
	for _, o := range b.readers {
		if o != r && o.readMark.Load() < mark {
			b.mu.Unlock()
			return // the last reader to pass the range evicts it
		}
	}
	b.mu.Unlock()
	dropPages(r.file, start, end-start)
}

// evictBatch is how much a reader reads between two evictions.
const evictBatch = 4 << 20

// frameBuf returns a buffer of n bytes for a frame, reusing one given back by Recycle.
func (b *Buffer) frameBuf(n int) []byte {
	select {
	case buf := <-b.freeFrames:
		if cap(buf) >= n {
			return buf[:n]
		}
	default:
	}
	return make([]byte, n)
}

// Recycle gives back the Data of a frame returned by Next once the caller is done with it
// (and with everything pointing into it), so the next frame reuses the memory instead of
// allocating and zeroing a fresh one. Optional: a frame never recycled is simply collected.
func (b *Buffer) Recycle(data []byte) {
	if cap(data) == 0 || cap(data) > maxRecycledFrame {
		return
	}
	select {
	case b.freeFrames <- data[:cap(data)]:
	default:
	}
}

// maxRecycledFrame bounds the frames kept for reuse, so one huge frame does not stay pinned.
const maxRecycledFrame = 8 << 20
