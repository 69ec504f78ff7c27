package buffer

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Append writes one KindData frame and returns without waiting for fsync: pass the Ticket to
// WaitDurable for that. Concurrent appends are serialized. The payload is written straight
// from the caller's slice, which may be reused as soon as Append returns.
//
// When MaxBytes would be exceeded, Block waits (until ctx ends) for readers to free segments,
// and DropOldest deletes the oldest segment, moving lagging cursors past it. A payload that can
// never fit returns ErrTooLarge. MaxBytes may be exceeded by the checkpoint frame of a new
// segment.
func (b *Buffer) Append(ctx context.Context, payload []byte, count int) (Ticket, error) {
	if count < 0 || int64(count) > math.MaxUint32 {
		return Ticket{}, fmt.Errorf("buffer append: count %d out of range", count)
	}
	if int64(len(payload)) > b.maxPayload {
		return Ticket{}, fmt.Errorf("buffer append: %d byte payload, at most %d: %w", len(payload), b.maxPayload, ErrTooLarge)
	}
	now := time.Now().UnixNano()
	pcrc := payloadCRC(payload) // outside the lock: appenders checksum in parallel
	size := int64(frameHeaderSize + len(payload))

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.reserve(ctx, size); err != nil {
		return Ticket{}, err
	}
	s := b.activeSeg
	off := s.size
	// A field, not a stack array: WriteAt's argument escapes, and Append must not allocate.
	putHeader(b.hdr[:], header{kind: KindData, length: uint32(len(payload)), count: uint32(count), time: now}, pcrc)
	_, err := b.active.WriteAt(b.hdr[:], off)
	if err == nil {
		_, err = b.active.WriteAt(payload, off+frameHeaderSize)
	}
	if err != nil {
		// Leave no partial frame for the next one to follow: cut it off, or if that fails too
		// seal the segment (its tail is never read: reads stop at s.size).
		if terr := b.active.Truncate(off); terr != nil {
			b.pending = append(b.pending, b.active)
			b.active, b.activeSeg = nil, nil
		}
		return Ticket{}, fmt.Errorf("buffer append: segment %s at %d: %w", segmentName(s.id), off, err)
	}
	if s.dataFrames == 0 {
		s.first = time.Unix(0, now)
	}
	s.size += size
	s.dataFrames++
	s.records += int64(count)
	b.total += size
	b.written = Position{Segment: s.id, Offset: s.size}
	if b.opts.Sync == 0 {
		b.requestSyncLocked(b.written)
	}
	return Ticket{end: b.written}, nil
}

// reserve makes the active segment ready for a frame of size bytes: it rolls when needed and
// applies the full policy. Caller holds b.mu; Block releases it while waiting.
func (b *Buffer) reserve(ctx context.Context, size int64) error {
	for {
		if b.closed {
			return ErrClosed
		}
		s := b.activeSeg
		if s == nil || (s.dataFrames > 0 && s.size+size > b.opts.SegmentBytes) {
			if err := b.roll(); err != nil {
				return fmt.Errorf("buffer append: %w", err)
			}
			continue
		}
		if b.opts.MaxBytes == 0 || b.total+size <= b.opts.MaxBytes {
			return nil
		}
		if s.size+size > b.opts.MaxBytes {
			// Deleting every older segment would not make room: seal this one so it can go too.
			if s.dataFrames == 0 {
				return fmt.Errorf("buffer append: %d bytes with a %d byte segment start exceed max_bytes %d: %w",
					size, s.size, b.opts.MaxBytes, ErrTooLarge)
			}
			if err := b.roll(); err != nil {
				return fmt.Errorf("buffer append: %w", err)
			}
			continue
		}
		if b.opts.WhenFull == DropOldest {
			if err := b.dropOldest(); err != nil {
				return fmt.Errorf("buffer append: drop oldest: %w", err)
			}
			continue
		}
		if err := b.waitForSpace(ctx); err != nil {
			return err
		}
	}
}

// waitForSpace releases b.mu until a segment is deleted, ctx ends, or the buffer closes.
func (b *Buffer) waitForSpace(ctx context.Context) error {
	ch := b.spaceCh
	b.blocked.Add(1)
	b.mu.Unlock()
	b.kickMaintenance()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = fmt.Errorf("buffer append: waiting for space: %w", ctx.Err())
	case <-b.done:
		err = ErrClosed
	}
	b.mu.Lock()
	b.blocked.Add(-1)
	return err
}

func (b *Buffer) kickMaintenance() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}
