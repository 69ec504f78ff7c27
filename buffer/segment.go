package buffer

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Segment header layout: [0:4] "TGBF", [4] version 1, [5:8] zero, [8:16] segment number (LE).
const (
	segmentHeaderSize = 16
	segmentMagic      = "TGBF"
	segmentVersion    = 1
	segmentSuffix     = ".seg"
)

// segment is the in-memory summary of one segment file. Guarded by Buffer.mu.
type segment struct {
	id         uint64
	size       int64 // bytes of valid frames; the file is never read past it
	dataFrames int
	records    int64
	first      time.Time // append time of the first data frame, zero if none
	checkpoint bool      // the first frame is a KindCheckpoint
}

func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) == 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}

func putSegmentHeader(dst []byte, id uint64) {
	copy(dst[0:4], segmentMagic)
	dst[4], dst[5], dst[6], dst[7] = segmentVersion, 0, 0, 0
	binary.LittleEndian.PutUint64(dst[8:16], id)
}

func checkSegmentHeader(b []byte, id uint64) bool {
	return len(b) >= segmentHeaderSize && string(b[0:4]) == segmentMagic && b[4] == segmentVersion &&
		binary.LittleEndian.Uint64(b[8:16]) == id
}

// segmentFile is a segment file found in a directory listing.
type segmentFile struct {
	id   uint64
	name string
	size int64
}

// listSegments returns the segment files in dir, oldest first. Other files are ignored.
func listSegments(dir string) ([]segmentFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments in %s: %w", dir, err)
	}
	var out []segmentFile
	for _, e := range entries {
		id, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("stat segment %s: %w", e.Name(), err)
		}
		out = append(out, segmentFile{id: id, name: e.Name(), size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// segmentFrom returns the index of the first segment with id >= id, or -1. Caller holds b.mu.
func (b *Buffer) segmentFrom(id uint64) int {
	i := sort.Search(len(b.segments), func(i int) bool { return b.segments[i].id >= id })
	if i == len(b.segments) {
		return -1
	}
	return i
}

func (b *Buffer) segmentPath(id uint64) string {
	return filepath.Join(b.segDir, segmentName(id))
}

// roll seals the active segment and starts a new one whose first frame is a checkpoint.
// Caller holds b.mu. The new file's directory entry is synced by the syncer before any frame
// in it is reported durable.
func (b *Buffer) roll() error {
	id := b.nextID
	path := b.segmentPath(id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	var cp []byte
	if b.opts.Checkpoint != nil {
		cp = b.opts.Checkpoint()
	}
	size := segmentHeaderSize
	if b.opts.Checkpoint != nil {
		size += frameHeaderSize + len(cp)
	}
	head := make([]byte, size)
	putSegmentHeader(head, id)
	if b.opts.Checkpoint != nil {
		copy(head[segmentHeaderSize+frameHeaderSize:], cp)
		h := header{kind: KindCheckpoint, length: uint32(len(cp)), time: time.Now().UnixNano()}
		putHeader(head[segmentHeaderSize:], h, payloadCRC(cp))
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("segment %s: write header: %w", segmentName(id), err)
	}
	if b.active != nil {
		b.pending = append(b.pending, b.active)
	}
	s := &segment{id: id, size: int64(size), checkpoint: b.opts.Checkpoint != nil}
	b.active, b.activeSeg = f, s
	b.segments = append(b.segments, s)
	b.nextID++
	b.total += s.size
	b.written = Position{Segment: id, Offset: s.size}
	b.dirDirty = true
	return nil
}

// removeOldest deletes the oldest segment, which is never the newest. Caller holds b.mu.
func (b *Buffer) removeOldest() error {
	s := b.segments[0]
	if err := os.Remove(b.segmentPath(s.id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove segment %s: %w", segmentName(s.id), err)
	}
	b.segments[0] = nil
	b.segments = b.segments[1:]
	b.total -= s.size
	b.dirDirty = true
	close(b.spaceCh)
	b.spaceCh = make(chan struct{})
	return nil
}
