package tail

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// savedFile is a file's position as kept in the buffer's state (collector.Batch.State), keyed
// by stateKey(id).
type savedFile struct {
	id      fileID
	key     uint64 // random key of the file generation: the first half of its record IDs
	gen     uint32 // generation: bumped by each copytruncate
	offset  int64  // first byte not covered by an emitted record (start of a pending partial)
	skip    int64  // records whose last line ends at or before skip were already emitted
	fpLen   int    // length of the fingerprinted prefix
	fp      uint64 // FNV-1a of the first fpLen bytes, to detect inode reuse
	path    string // the file's real path last seen
	logical string // the path discovery matched (the /var/log/containers symlink)
	// hold is, per stream kind (stdout, stderr), the offset of the first line of that stream
	// not yet part of an emitted record: a held multiline record or a pending partial starts
	// there. A restart skips the lines of the stream before it (their records were emitted)
	// and joins again from it, with mstate, the multiline machine's state there.
	hold   [2]int64
	mstate [2]multiline.State
}

// stateVersion 2 adds hold and mstate; a version 1 value reads as held from offset on (a
// partial pending at the stop is joined again; complete lines between offset and skip are
// emitted again with the same ids).
const (
	stateVersion   = 2
	stateVersionV1 = 1
)

// holdIndex maps a stream kind to its slot in hold, -1 for none.
func holdIndex(st collector.Stream) int {
	switch st {
	case collector.StreamStdout:
		return 0
	case collector.StreamStderr:
		return 1
	}
	return -1
}

// stateKey is "dev:ino" in hex: stable for a file for as long as it exists.
func stateKey(id fileID) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, id.dev, 16)
	b = append(b, ':')
	b = strconv.AppendUint(b, id.ino, 16)
	return string(b)
}

func (s *savedFile) appendBinary(dst []byte) []byte {
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, s.id.dev)
	dst = binary.AppendUvarint(dst, s.id.ino)
	dst = binary.BigEndian.AppendUint64(dst, s.key)
	dst = binary.AppendUvarint(dst, uint64(s.gen))
	dst = binary.AppendUvarint(dst, uint64(s.offset))
	dst = binary.AppendUvarint(dst, uint64(s.skip))
	dst = binary.AppendUvarint(dst, uint64(s.fpLen))
	dst = binary.BigEndian.AppendUint64(dst, s.fp)
	dst = binary.AppendUvarint(dst, uint64(len(s.path)))
	dst = append(dst, s.path...)
	dst = binary.AppendUvarint(dst, uint64(len(s.logical)))
	dst = append(dst, s.logical...)
	for k := range s.hold {
		dst = binary.AppendUvarint(dst, uint64(s.hold[k]-s.offset))
		dst = binary.AppendUvarint(dst, uint64(s.mstate[k]))
	}
	return dst
}

var errBadState = errors.New("bad tail state value")

func decodeSaved(b []byte) (savedFile, error) {
	var s savedFile
	if len(b) == 0 || (b[0] != stateVersion && b[0] != stateVersionV1) {
		return s, errBadState
	}
	d := stateDecoder{b: b[1:]}
	s.id.dev = d.uvarint()
	s.id.ino = d.uvarint()
	s.key = d.uint64()
	s.gen = uint32(d.uvarint())
	s.offset = int64(d.uvarint())
	s.skip = int64(d.uvarint())
	s.fpLen = int(d.uvarint())
	s.fp = d.uint64()
	s.path = d.str()
	s.logical = d.str()
	for k := range s.hold {
		s.hold[k] = s.offset
		if b[0] == stateVersionV1 {
			continue
		}
		s.hold[k] += int64(d.uvarint())
		st := d.uvarint()
		if st > 0xffff {
			d.bad = true
		}
		s.mstate[k] = multiline.State(st)
		if s.hold[k] < s.offset || s.hold[k] > s.skip {
			d.bad = true
		}
	}
	if d.bad || len(d.b) != 0 || s.offset < 0 || s.skip < s.offset || s.fpLen < 0 || s.fpLen > fingerprintLen {
		return s, errBadState
	}
	return s, nil
}

type stateDecoder struct {
	b   []byte
	bad bool
}

func (d *stateDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > 1<<62 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *stateDecoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
