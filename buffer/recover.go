package buffer

import (
	"errors"
	"fmt"
	"os"
)

// Recover replays frames in order so the collector can rebuild its input positions: from the
// newest segment whose first frame is a valid checkpoint (or from the oldest segment when none
// is) to the end of the buffer, checkpoint and data frames alike. Corrupt frames are skipped.
// payload is valid only until fn returns. An error from fn stops the replay and is returned.
// Call Recover after Open and before the first Append.
func (b *Buffer) Recover(fn func(kind Kind, payload []byte) error) error {
	type span struct {
		id   uint64
		size int64
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	start := 0
	for i := len(b.segments) - 1; i >= 0; i-- {
		if b.segments[i].checkpoint {
			start = i
			break
		}
	}
	spans := make([]span, 0, len(b.segments)-start)
	for _, s := range b.segments[start:] {
		spans = append(spans, span{s.id, s.size})
	}
	b.mu.Unlock()

	var payload []byte
	for _, sp := range spans {
		err := b.replaySegment(sp.id, sp.size, &payload, fn)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile: every reader had passed it
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Buffer) replaySegment(id uint64, size int64, payload *[]byte, fn func(Kind, []byte) error) error {
	f, err := os.Open(b.segmentPath(id))
	if err != nil {
		return err
	}
	defer f.Close()
	name := segmentName(id)
	var fnErr error
	err = eachFrame(f, name, segmentHeaderSize, size, payload, func(h header, off int64, p []byte) error {
		if err := fn(h.kind, p); err != nil {
			fnErr = fmt.Errorf("buffer recover: segment %s at %d: %w", name, off, err)
			return fnErr
		}
		return nil
	})
	if err != nil && err != fnErr {
		return fmt.Errorf("buffer recover: %w", err)
	}
	return err
}

// eachFrame calls fn with every valid frame of segment file f from offset from to size, with
// its offset and payload (read into *payload, valid until fn returns). Damaged regions are
// skipped up to the next valid frame. An error from fn stops the walk and is returned as is.
func eachFrame(f *os.File, name string, from, size int64, payload *[]byte, fn func(h header, off int64, p []byte) error) error {
	w := newWindow(f, size, 1<<20)
	for off := from; off < size; {
		h, reason, err := w.frameAt(off)
		if err != nil {
			return fmt.Errorf("segment %s: %w", name, err)
		}
		if reason != "" {
			next, _, err := w.resync(off + 1)
			if err != nil {
				return fmt.Errorf("segment %s: %w", name, err)
			}
			if next < 0 {
				break
			}
			off = next
			continue
		}
		n := int(h.length)
		if cap(*payload) < n {
			*payload = make([]byte, n)
		}
		p := (*payload)[:n]
		if _, err := f.ReadAt(p, off+frameHeaderSize); err != nil {
			return fmt.Errorf("segment %s at %d: %w", name, off, err)
		}
		if err := fn(h, off, p); err != nil {
			return err
		}
		off += frameHeaderSize + int64(n)
	}
	return nil
}
