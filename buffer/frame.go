package buffer

import (
	"encoding/binary"
	"hash/crc32"
)

// Frame header layout (little endian):
//
//	[0:2]   magic 0xA7 0x7B: lets a scan find the next frame after damage
//	[2]     kind
//	[3]     version, 0
//	[4:8]   payload length
//	[8:12]  CRC-32C over the payload, then [0:8] and [12:24] (payload first, so Append can
//	        checksum outside its lock and finish with the header under it)
//	[12:16] count: records in the batch
//	[16:24] append time, unix nanoseconds
const (
	frameHeaderSize = 24
	frameMagic0     = 0xA7
	frameMagic1     = 0x7B
)

// frameMagic is the two bytes every frame starts with.
var frameMagic = [2]byte{frameMagic0, frameMagic1}

// castagnoli is immutable after package init; crc32 picks the hardware implementation for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type header struct {
	kind   Kind
	length uint32
	crc    uint32
	count  uint32
	time   int64
}

// putHeader encodes h into dst[:frameHeaderSize] with the CRC of a payload whose own CRC-32C
// is pcrc.
func putHeader(dst []byte, h header, pcrc uint32) {
	dst[0], dst[1], dst[2], dst[3] = frameMagic0, frameMagic1, byte(h.kind), 0
	binary.LittleEndian.PutUint32(dst[4:8], h.length)
	binary.LittleEndian.PutUint32(dst[12:16], h.count)
	binary.LittleEndian.PutUint64(dst[16:24], uint64(h.time))
	binary.LittleEndian.PutUint32(dst[8:12], frameCRC(dst, pcrc))
}

// payloadCRC is the first half of a frame's checksum.
func payloadCRC(payload []byte) uint32 { return crc32.Update(0, castagnoli, payload) }

// frameCRC finishes a frame's checksum with its header, minus the CRC field.
func frameCRC(hdr []byte, pcrc uint32) uint32 {
	c := crc32.Update(pcrc, castagnoli, hdr[0:8])
	return crc32.Update(c, castagnoli, hdr[12:frameHeaderSize])
}

// parseHeader decodes a frame header. It returns a reason when b is not one; the CRC is not
// checked here, the payload is needed for that.
func parseHeader(b []byte) (header, string) {
	if len(b) < frameHeaderSize {
		return header{}, "short header"
	}
	if b[0] != frameMagic0 || b[1] != frameMagic1 {
		return header{}, "bad magic"
	}
	k := Kind(b[2])
	if (k != KindData && k != KindCheckpoint) || b[3] != 0 {
		return header{}, "bad kind"
	}
	return header{
		kind:   k,
		length: binary.LittleEndian.Uint32(b[4:8]),
		crc:    binary.LittleEndian.Uint32(b[8:12]),
		count:  binary.LittleEndian.Uint32(b[12:16]),
		time:   int64(binary.LittleEndian.Uint64(b[16:24])),
	}, ""
}

// decodeFrame decodes the frame at the start of b: its header and payload (a sub-slice of b),
// or a reason why b does not start with a valid frame.
func decodeFrame(b []byte) (header, []byte, string) {
	h, reason := parseHeader(b)
	if reason != "" {
		return h, nil, reason
	}
	if uint64(h.length) > uint64(len(b)-frameHeaderSize) {
		return h, nil, "bad length"
	}
	payload := b[frameHeaderSize : frameHeaderSize+int(h.length)]
	if frameCRC(b, payloadCRC(payload)) != h.crc {
		return h, nil, "checksum mismatch"
	}
	return h, payload, ""
}
