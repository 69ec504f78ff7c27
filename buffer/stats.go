package buffer

import (
	"os"
	"sort"
	"time"
)

// Stats is a snapshot for the collector's gauges.
type Stats struct {
	Bytes          int64 // segment bytes on disk (tailgate_buffer_bytes)
	Segments       int
	CorruptFrames  int64 // damaged regions skipped by the scan at Open
	TruncatedBytes int64 // torn-tail bytes cut at Open
	CorruptCursors int   // cursor files unreadable at Open (their readers restarted at the oldest frame)
	Written        Position
	Durable        Position
	SyncError      error // sticky: set once an fsync failed
	IntervalSyncs  int64 // commits started by the Sync interval (TriggerInterval)
	WaiterSyncs    int64 // commits started on demand (TriggerWaiter)
	Readers        []ReaderStats
}

// ReaderStats describes one reader.
type ReaderStats struct {
	Name           string
	Acked          Position
	LagBytes       int64     // segment bytes after the acked cursor
	Oldest         time.Time // append time of the oldest unacked frame; zero when caught up
	DroppedFrames  int64     // data frames drop_oldest deleted before this reader acked them
	DroppedRecords int64
	CorruptFrames  int64 // damaged frames this reader skipped after Open
}

// Stats returns the buffer's current figures. It reads at most a few frame headers per reader.
func (b *Buffer) Stats() Stats {
	type lookup struct {
		i        int
		seg      uint64
		off      int64
		fallback time.Time
	}
	var todo []lookup
	b.mu.Lock()
	st := Stats{
		Bytes: b.total, Segments: len(b.segments), CorruptFrames: b.corruptFrames,
		TruncatedBytes: b.truncatedBytes, CorruptCursors: b.corruptCursors,
		Written: b.written, Durable: b.durable, SyncError: b.syncErr,
		IntervalSyncs: b.intervalSyncs, WaiterSyncs: b.waiterSyncs,
	}
	for _, name := range b.readerNamesLocked() {
		r := b.readers[name]
		r.mu.Lock()
		rs := ReaderStats{
			Name: name, Acked: r.acked, DroppedFrames: r.droppedFrames,
			DroppedRecords: r.droppedRecords, CorruptFrames: r.corrupt,
		}
		r.mu.Unlock()
		if i := b.segmentFrom(rs.Acked.Segment); i >= 0 {
			for j, s := range b.segments[i:] {
				rs.LagBytes += s.size
				if j == 0 && s.id == rs.Acked.Segment {
					rs.LagBytes -= min(rs.Acked.Offset, s.size)
				}
			}
			// The first segment after the cursor that still holds data frames dates the lag.
			for j, s := range b.segments[i:] {
				if s.dataFrames == 0 || (j == 0 && passed(rs.Acked, s)) {
					continue
				}
				off := int64(segmentHeaderSize)
				if s.id == rs.Acked.Segment {
					off = max(off, rs.Acked.Offset)
				}
				todo = append(todo, lookup{len(st.Readers), s.id, off, s.first})
				break
			}
		}
		st.Readers = append(st.Readers, rs)
	}
	b.mu.Unlock()
	for _, l := range todo {
		st.Readers[l.i].Oldest = b.dataTimeAt(l.seg, l.off, l.fallback)
	}
	return st
}

func (b *Buffer) readerNamesLocked() []string {
	names := make([]string, 0, len(b.readers))
	for n := range b.readers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dataTimeAt returns the append time of the first data frame at or after off in segment seg,
// following at most a few checkpoint frames; fallback when it cannot tell.
func (b *Buffer) dataTimeAt(seg uint64, off int64, fallback time.Time) time.Time {
	f, err := os.Open(b.segmentPath(seg))
	if err != nil {
		return fallback
	}
	defer f.Close()
	var hb [frameHeaderSize]byte
	for range 4 {
		if _, err := f.ReadAt(hb[:], off); err != nil {
			return fallback
		}
		h, reason := parseHeader(hb[:])
		if reason != "" {
			return fallback
		}
		if h.kind == KindData {
			return time.Unix(0, h.time)
		}
		off += frameHeaderSize + int64(h.length)
	}
	return fallback
}
