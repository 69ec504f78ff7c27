package buffer

import (
	"fmt"
	"os"
	"time"
)

// maintainLoop persists dirty cursors and deletes segments every reader has passed, once per
// sync interval (200ms with sync "always"), and at once when a blocked Append needs space.
func (b *Buffer) maintainLoop() {
	defer b.wg.Done()
	every := b.opts.Sync
	if every == 0 {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
		case <-b.kick:
		}
		_ = b.persistCursors()
		b.retain()
	}
}

// persistCursors writes the cursor file of every reader that acked since the last pass.
func (b *Buffer) persistCursors() error {
	b.persistMu.Lock()
	defer b.persistMu.Unlock()
	type job struct {
		r   *Reader
		pos Position
	}
	var jobs []job
	b.mu.Lock()
	for _, r := range b.readers {
		r.mu.Lock()
		if r.dirty {
			jobs = append(jobs, job{r, r.acked})
			r.dirty = false
		}
		r.mu.Unlock()
	}
	b.mu.Unlock()
	var first error
	for _, j := range jobs {
		err := writeCursor(b.curDir, j.r.name, j.pos)
		j.r.mu.Lock()
		if err != nil {
			j.r.dirty = true
			b.warn.Warn("persist:"+j.r.name, "cannot persist cursor", "sink", j.r.name, "err", err)
		}
		removed := j.r.removed
		j.r.mu.Unlock()
		if removed {
			// RemoveReader ran while we wrote: it waits for persistMu, so its delete wins.
			continue
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if len(jobs) > 0 {
		if err := syncDir(b.curDir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// passed reports whether a cursor at p has consumed all of segment s.
func passed(p Position, s *segment) bool {
	return p.Segment > s.id || (p.Segment == s.id && p.Offset >= s.size)
}

// retain deletes the oldest segments while every reader's acked cursor has passed them. The
// newest segment stays, so the last checkpoint survives; with no readers nothing is deleted.
func (b *Buffer) retain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.readers) == 0 || b.closed {
		return
	}
	for len(b.segments) > 1 {
		s := b.segments[0]
		for _, r := range b.readers {
			r.mu.Lock()
			acked := r.acked
			r.mu.Unlock()
			if !passed(acked, s) {
				return
			}
		}
		if err := b.removeOldest(); err != nil {
			b.log.Warn("cannot delete segment", "err", err)
			return
		}
	}
}

// dropOldest deletes the oldest segment for drop_oldest, moving every reader still inside it
// to the start of the next one and counting what each lost. Caller holds b.mu; there are at
// least two segments.
func (b *Buffer) dropOldest() error {
	if len(b.segments) < 2 {
		return fmt.Errorf("%d segments: %w", len(b.segments), ErrTooLarge)
	}
	s, next := b.segments[0], b.segments[1]
	floor := Position{Segment: next.id, Offset: segmentHeaderSize}
	for _, r := range b.readers {
		r.mu.Lock()
		acked := r.acked
		r.mu.Unlock()
		if passed(acked, s) {
			continue
		}
		frames, records := int64(s.dataFrames), s.records
		if acked.Segment == s.id && acked.Offset > segmentHeaderSize {
			var err error
			if frames, records, err = b.countFrom(s, acked.Offset); err != nil {
				b.log.Warn("cannot count dropped frames", "sink", r.name, "err", err)
			}
		}
		r.mu.Lock()
		r.droppedFrames += frames
		r.droppedRecords += records
		if r.acked.Less(floor) {
			r.acked, r.dirty = floor, true
		}
		if r.floor.Less(floor) {
			r.floor = floor
		}
		r.mu.Unlock()
		if b.opts.OnDrop != nil {
			from := int64(segmentHeaderSize)
			if acked.Segment == s.id {
				from = max(from, acked.Offset)
			}
			b.opts.OnDrop(Drop{Reader: r.name, Frames: frames, Records: records,
				path: b.segmentPath(s.id), name: segmentName(s.id), from: from, size: s.size})
		}
		b.warn.Warn("drop:"+r.name, "buffer full: dropped the oldest segment before the sink read it", "sink", r.name,
			"segment", segmentName(s.id), "frames", frames, "records", records)
	}
	return b.removeOldest()
}

// countFrom counts the data frames and records of segment s from offset off to its end by
// walking frame headers (lengths only: the segment is about to be deleted).
func (b *Buffer) countFrom(s *segment, off int64) (frames, records int64, err error) {
	f, err := os.Open(b.segmentPath(s.id))
	if err != nil {
		return 0, 0, fmt.Errorf("segment %s: %w", segmentName(s.id), err)
	}
	defer f.Close()
	w := newWindow(f, s.size, 16<<10)
	for off+frameHeaderSize <= s.size {
		v, err := w.avail(off, frameHeaderSize)
		if err != nil {
			return frames, records, fmt.Errorf("segment %s: %w", segmentName(s.id), err)
		}
		h, reason := parseHeader(v)
		if reason != "" {
			break
		}
		if h.kind == KindData {
			frames++
			records += int64(h.count)
		}
		off += frameHeaderSize + int64(h.length)
	}
	return frames, records, nil
}
