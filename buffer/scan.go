package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// errShort means a read would pass the end of the readable region.
var errShort = errors.New("short read")

// window reads a region of a segment file sequentially through one reusable buffer, so scans
// do one large pread per window instead of two small ones per frame.
type window struct {
	r    io.ReaderAt
	size int64 // readable limit
	buf  []byte
	hdr  [frameHeaderSize]byte // the header being checked
	off  int64                 // file offset of buf[0]
	n    int                   // valid bytes in buf
}

func newWindow(r io.ReaderAt, size int64, bufSize int) *window {
	return &window{r: r, size: size, buf: make([]byte, bufSize)}
}

// avail returns the bytes from off to the end of the window, at least min of them, refilling
// the window at off when fewer are buffered. min must not exceed len(w.buf).
func (w *window) avail(off int64, min int) ([]byte, error) {
	if off < 0 || off+int64(min) > w.size {
		return nil, errShort
	}
	if off >= w.off && off+int64(min) <= w.off+int64(w.n) {
		return w.buf[off-w.off : w.n], nil
	}
	m := len(w.buf)
	if rem := w.size - off; rem < int64(m) {
		m = int(rem)
	}
	k, err := w.r.ReadAt(w.buf[:m], off)
	w.off, w.n = off, k
	if k < min {
		w.n = 0
		if err == nil || errors.Is(err, io.EOF) {
			return nil, errShort
		}
		return nil, fmt.Errorf("read at %d: %w", off, err)
	}
	return w.buf[:k], nil
}

// frameAt checks the frame at off: magic, kind, length within the region, and CRC. It returns
// a reason when there is no valid frame there; err is set only for I/O errors.
func (w *window) frameAt(off int64) (header, string, error) {
	v, err := w.avail(off, frameHeaderSize)
	if err != nil {
		if errors.Is(err, errShort) {
			return header{}, "short header", nil
		}
		return header{}, "", err
	}
	h, reason := parseHeader(v)
	if reason != "" {
		return h, reason, nil
	}
	end := off + frameHeaderSize + int64(h.length)
	if end > w.size {
		return h, "bad length", nil
	}
	copy(w.hdr[:], v)
	var c uint32
	for p := off + frameHeaderSize; p < end; {
		want := len(w.buf)
		if rem := end - p; rem < int64(want) {
			want = int(rem)
		}
		v, err := w.avail(p, want)
		if err != nil {
			if errors.Is(err, errShort) {
				return h, "bad length", nil
			}
			return h, "", err
		}
		if int64(len(v)) > end-p {
			v = v[:end-p]
		}
		c = crc32.Update(c, castagnoli, v)
		p += int64(len(v))
	}
	if frameCRC(w.hdr[:], c) != h.crc {
		return h, "checksum mismatch", nil
	}
	return h, "", nil
}

// resync returns the offset of the first valid frame at or after from, or -1 when there is
// none before the end of the region.
func (w *window) resync(from int64) (int64, header, error) {
	for p := from; p+frameHeaderSize <= w.size; {
		v, err := w.avail(p, frameHeaderSize)
		if err != nil {
			if errors.Is(err, errShort) {
				break
			}
			return -1, header{}, err
		}
		i := bytes.Index(v, frameMagic[:])
		if i < 0 {
			// The last byte may be the first half of a magic that straddles the window.
			p += int64(len(v)) - 1
			continue
		}
		c := p + int64(i)
		h, reason, err := w.frameAt(c)
		if err != nil {
			return -1, header{}, err
		}
		if reason == "" {
			return c, h, nil
		}
		p = c + 1
	}
	return -1, header{}, nil
}

// Corruption is damage found in a segment.
type Corruption struct {
	Segment string // file name
	Offset  int64
	Length  int64  // bytes skipped (or truncated, for a tail)
	Reason  string // "checksum mismatch", "bad length", "bad magic", "bad segment header", ...
	Tail    bool   // no valid frame follows: a torn write, truncated at Open
}

// segmentScan is what a full scan of one segment file found.
type segmentScan struct {
	frames     int // valid frames of any kind
	dataFrames int
	records    int64
	first      time.Time // append time of the first and last valid data frame
	last       time.Time
	checkpoint bool  // the first frame is a valid KindCheckpoint
	validEnd   int64 // end of the last valid frame; a torn tail starts here
	corrupt    []Corruption
}

// scanSegment validates every frame of a segment of size bytes. Mid-segment damage is recorded
// and skipped; trailing bytes that hold no valid frame are recorded as a Tail corruption.
func scanSegment(r io.ReaderAt, name string, id uint64, size int64) (segmentScan, error) {
	var s segmentScan
	if size < segmentHeaderSize {
		if size > 0 {
			s.corrupt = append(s.corrupt, Corruption{Segment: name, Length: size, Reason: "short segment header", Tail: true})
		}
		return s, nil
	}
	var sh [segmentHeaderSize]byte
	if _, err := r.ReadAt(sh[:], 0); err != nil {
		return s, fmt.Errorf("segment %s: read header: %w", name, err)
	}
	if !checkSegmentHeader(sh[:], id) {
		s.corrupt = append(s.corrupt, Corruption{Segment: name, Length: segmentHeaderSize, Reason: "bad segment header"})
	}
	w := newWindow(r, size, 1<<20)
	off := int64(segmentHeaderSize)
	s.validEnd = off
	for off < size {
		h, reason, err := w.frameAt(off)
		if err != nil {
			return s, fmt.Errorf("segment %s: %w", name, err)
		}
		if reason == "" {
			if s.frames == 0 && off == segmentHeaderSize && h.kind == KindCheckpoint {
				s.checkpoint = true
			}
			s.frames++
			if h.kind == KindData {
				t := time.Unix(0, h.time)
				if s.dataFrames == 0 {
					s.first = t
				}
				s.last = t
				s.dataFrames++
				s.records += int64(h.count)
			}
			off += frameHeaderSize + int64(h.length)
			s.validEnd = off
			continue
		}
		next, _, err := w.resync(off + 1)
		if err != nil {
			return s, fmt.Errorf("segment %s: %w", name, err)
		}
		if next < 0 {
			s.corrupt = append(s.corrupt, Corruption{Segment: name, Offset: off, Length: size - off, Reason: reason, Tail: true})
			break
		}
		s.corrupt = append(s.corrupt, Corruption{Segment: name, Offset: off, Length: next - off, Reason: reason})
		off = next
	}
	return s, nil
}
