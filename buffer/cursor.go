package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// Cursor file layout: [0:4] "TGCR", [4] version 1, [5:8] zero, [8:16] segment, [16:24] offset,
// [24:28] CRC-32C of [0:24]. Written to a dot-prefixed temp file, synced, then renamed.
const (
	cursorSize    = 28
	cursorMagic   = "TGCR"
	cursorVersion = 1
)

var errCorruptCursor = errors.New("corrupt cursor")

func encodeCursor(p Position) []byte {
	b := make([]byte, cursorSize)
	copy(b[0:4], cursorMagic)
	b[4] = cursorVersion
	binary.LittleEndian.PutUint64(b[8:16], p.Segment)
	binary.LittleEndian.PutUint64(b[16:24], uint64(p.Offset))
	binary.LittleEndian.PutUint32(b[24:28], crc32.Checksum(b[:24], castagnoli))
	return b
}

func decodeCursor(b []byte) (Position, error) {
	if len(b) != cursorSize || string(b[0:4]) != cursorMagic || b[4] != cursorVersion ||
		crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:28]) {
		return Position{}, errCorruptCursor
	}
	p := Position{
		Segment: binary.LittleEndian.Uint64(b[8:16]),
		Offset:  int64(binary.LittleEndian.Uint64(b[16:24])),
	}
	if p.Offset < 0 {
		return Position{}, errCorruptCursor
	}
	return p, nil
}

// writeCursor replaces the cursor file atomically. The caller syncs the directory.
func writeCursor(dir, name string, p Position) error {
	if err := ReplaceFile(dir, cursorFileName(name), encodeCursor(p)); err != nil {
		return fmt.Errorf("cursor %s: write: %w", name, err)
	}
	return nil
}

// cursorFileName escapes a reader name into a file name: bytes outside [A-Za-z0-9_-] and a
// leading dot become %XX, so any sink name is safe and temp files (dot-prefixed) never clash.
func cursorFileName(name string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || (c == '.' && i > 0)
		if ok {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// readerName undoes cursorFileName; ok is false for names it never produces.
func readerName(file string) (string, bool) {
	if file == "" || file[0] == '.' {
		return "", false
	}
	var sb strings.Builder
	for i := 0; i < len(file); i++ {
		c := file[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		if i+2 >= len(file) {
			return "", false
		}
		hi, lo := unhex(file[i+1]), unhex(file[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		sb.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return sb.String(), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// loadCursors creates a Reader for every cursor file. A corrupt cursor, or one pointing
// outside the buffer, starts its reader at the oldest retained frame.
func (b *Buffer) loadCursors() error {
	entries, err := os.ReadDir(b.curDir)
	if err != nil {
		return fmt.Errorf("buffer: list cursors: %w", err)
	}
	for _, e := range entries {
		file := e.Name()
		if strings.HasPrefix(file, ".") {
			_ = os.Remove(filepath.Join(b.curDir, file)) // a temp file from a crash
			continue
		}
		name, ok := readerName(file)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.curDir, file))
		if err != nil {
			return fmt.Errorf("buffer: read cursor %s: %w", name, err)
		}
		pos, err := decodeCursor(data)
		if err != nil {
			b.corruptCursors++
			b.log.Warn("corrupt cursor; reader restarts at the oldest frame", "sink", name)
			pos = Position{}
		}
		pos = b.normalizeCursor(name, pos)
		r := b.newReader(name, pos)
		r.dirty = err != nil
		b.readers[name] = r
	}
	return nil
}

// normalizeCursor maps a loaded cursor into the retained segments. Caller holds b.mu or is Open.
func (b *Buffer) normalizeCursor(name string, p Position) Position {
	if p == (Position{}) || len(b.segments) == 0 {
		return Position{}
	}
	oldest, newest := b.segments[0], b.segments[len(b.segments)-1]
	switch {
	case p.Segment < oldest.id:
		return Position{} // acked segments were deleted: start at the oldest retained
	case p.Segment > newest.id:
		b.log.Warn("cursor past the end of the buffer; reader restarts at the oldest frame", "sink", name, "oldest", oldest.id, "newest", newest.id,
			"segment", p.Segment, "offset", p.Offset)
		return Position{}
	}
	i := b.segmentFrom(p.Segment)
	s := b.segments[i]
	if s.id != p.Segment {
		return Position{Segment: s.id, Offset: segmentHeaderSize}
	}
	if p.Offset > s.size {
		b.log.Warn("cursor past the end of its segment", "sink", name, "segment", p.Segment, "offset", p.Offset)
		return Position{Segment: s.id, Offset: s.size}
	}
	return p
}
