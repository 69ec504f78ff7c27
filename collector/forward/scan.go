package forward

import (
	"encoding/binary"
	"errors"

	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

// maxDepth bounds container nesting in a frame, so neither the scanner's stack nor the
// recursive JSON conversion can be driven arbitrarily deep by a peer.
const maxDepth = 100

var (
	errTooLarge  = errors.New("frame exceeds max_chunk_bytes")
	errMalformed = errors.New("malformed msgpack")
	errTooDeep   = errors.New("frame nests too deep")
)

// msgpackScanner finds where one msgpack value ends in a stream that arrives in pieces. It is
// resumable: scan is called again with the same frame start and more bytes, and continues where
// it stopped, so a frame costs one pass however it is split. Every declared length is checked
// against max before the bytes are awaited: a 100 MiB bin prefix fails at its header.
type msgpackScanner struct {
	max   int
	off   int      // bytes of the frame consumed so far (may run past what has arrived)
	stack []uint64 // values still to read, per open container
}

func (s *msgpackScanner) reset() {
	s.off = 0
	s.stack = append(s.stack[:0], 1)
}

// scan reports the frame's length once b (the bytes received so far, from the frame start)
// holds a whole value; done is false when more bytes are needed.
func (s *msgpackScanner) scan(b []byte) (n int, done bool, err error) {
	if len(s.stack) == 0 && s.off == 0 {
		s.stack = append(s.stack, 1)
	}
	for {
		for len(s.stack) > 0 && s.stack[len(s.stack)-1] == 0 {
			s.stack = s.stack[:len(s.stack)-1]
		}
		if len(s.stack) == 0 {
			if s.off > len(b) {
				return 0, false, nil
			}
			return s.off, true, nil
		}
		if s.off >= len(b) {
			return 0, false, nil
		}
		hdr, body, count, ok, err := headerSize(b[s.off:])
		if err != nil {
			return 0, false, err
		}
		if !ok {
			return 0, false, nil
		}
		// Every pending value takes at least one byte: a count that cannot fit is refused now.
		if uint64(s.off)+uint64(hdr)+body+count > uint64(s.max) {
			return 0, false, errTooLarge
		}
		s.stack[len(s.stack)-1]--
		s.off += hdr + int(body)
		if count > 0 {
			if len(s.stack) >= maxDepth {
				return 0, false, errTooDeep
			}
			s.stack = append(s.stack, count)
		}
	}
}

// headerSize decodes the header of the value at b: the header's size, the size of the payload
// that follows it (str, bin, ext, scalars), and the number of child values (array, map). ok is
// false when b is too short to hold the header.
func headerSize(b []byte) (hdr int, body, count uint64, ok bool, err error) {
	c := b[0]
	switch {
	case c <= 0x7f, c >= 0xe0: // fixint
		return 1, 0, 0, true, nil
	case c <= 0x8f: // fixmap
		return 1, 0, uint64(c&0x0f) * 2, true, nil
	case c <= 0x9f: // fixarray
		return 1, 0, uint64(c & 0x0f), true, nil
	case c <= 0xbf: // fixstr
		return 1, uint64(c & 0x1f), 0, true, nil
	}
	need := func(n int) bool { return len(b) >= n }
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 1, 0, 0, true, nil
	case 0xc4, 0xd9: // bin8, str8
		if !need(2) {
			return 0, 0, 0, false, nil
		}
		return 2, uint64(b[1]), 0, true, nil
	case 0xc5, 0xda: // bin16, str16
		if !need(3) {
			return 0, 0, 0, false, nil
		}
		return 3, uint64(binary.BigEndian.Uint16(b[1:])), 0, true, nil
	case 0xc6, 0xdb: // bin32, str32
		if !need(5) {
			return 0, 0, 0, false, nil
		}
		return 5, uint64(binary.BigEndian.Uint32(b[1:])), 0, true, nil
	case 0xc7: // ext8: len, type, data
		if !need(2) {
			return 0, 0, 0, false, nil
		}
		return 3, uint64(b[1]), 0, true, nil
	case 0xc8: // ext16
		if !need(3) {
			return 0, 0, 0, false, nil
		}
		return 4, uint64(binary.BigEndian.Uint16(b[1:])), 0, true, nil
	case 0xc9: // ext32
		if !need(5) {
			return 0, 0, 0, false, nil
		}
		return 6, uint64(binary.BigEndian.Uint32(b[1:])), 0, true, nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 1, 4, 0, true, nil
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return 1, 8, 0, true, nil
	case 0xcc, 0xd0: // uint8, int8
		return 1, 1, 0, true, nil
	case 0xcd, 0xd1: // uint16, int16
		return 1, 2, 0, true, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
		return 2, 1 << (c - 0xd4), 0, true, nil
	case 0xdc: // array16
		if !need(3) {
			return 0, 0, 0, false, nil
		}
		return 3, 0, uint64(binary.BigEndian.Uint16(b[1:])), true, nil
	case 0xdd: // array32
		if !need(5) {
			return 0, 0, 0, false, nil
		}
		return 5, 0, uint64(binary.BigEndian.Uint32(b[1:])), true, nil
	case 0xde: // map16
		if !need(3) {
			return 0, 0, 0, false, nil
		}
		return 3, 0, uint64(binary.BigEndian.Uint16(b[1:])) * 2, true, nil
	case 0xdf: // map32
		if !need(5) {
			return 0, 0, 0, false, nil
		}
		return 5, 0, uint64(binary.BigEndian.Uint32(b[1:])) * 2, true, nil
	}
	return 0, 0, 0, false, errMalformed // 0xc1 is never used
}

// jsonScanner finds where one JSON array ends in a stream (the frames fluent-logger-golang
// writes with MarshalAsJSON, back to back): jsonscan.Framer with this input's limits and errors.
// It tracks only strings and bracket depth; the transcoder validates the rest.
type jsonScanner struct{ f jsonscan.Framer }

func newJSONScanner(max int) jsonScanner {
	return jsonScanner{jsonscan.Framer{Max: max, MaxDepth: maxDepth}}
}

func (s *jsonScanner) reset() { s.f.Reset() }

func (s *jsonScanner) scan(b []byte) (n int, done bool, err error) {
	n, done, st := s.f.Scan(b)
	switch st {
	case jsonscan.TooLarge:
		return 0, false, errTooLarge
	case jsonscan.TooDeep:
		return 0, false, errTooDeep
	case jsonscan.Invalid:
		return 0, false, errMalformed
	}
	return n, done, nil
}
