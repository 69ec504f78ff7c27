package cloudlogging

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The sink writes LogEntry messages straight into protobuf wire bytes: building loggingpb and
// structpb objects per record (a Value, a map entry and a string header per JSON member) and
// having the protobuf library walk them again by reflection cost several times more than the
// bytes themselves (BenchmarkEntry* in bench_test.go). These helpers are that writer.

// beginMessage appends the tag of a length-delimited field num and one byte reserved for its
// length, and returns where the field's content starts. endMessage writes the length.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

// endMessage writes the length of the content that began at start. Content under 128 bytes
// (most JSON members) fits the reserved byte; longer content is moved up by the extra length
// bytes it needs.
func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[start+k-1:], b[start:start+n])
	protowire.AppendVarint(b[:start-1], uint64(n))
	return b
}

// appendStringField appends field num holding s, with invalid UTF-8 replaced by U+FFFD (proto3
// strings must be UTF-8, and the API refuses a request that has one that is not). It reports
// whether anything was replaced.
func appendStringField(b []byte, num protowire.Number, s []byte) ([]byte, bool) {
	if validUTF8(s) {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, s), false
	}
	b, start := beginMessage(b, num)
	b = appendValidUTF8(b, s)
	return endMessage(b, start), true
}

// appendStringFieldS is appendStringField for a string.
func appendStringFieldS(b []byte, num protowire.Number, s string) []byte {
	if utf8.ValidString(s) {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
	b, start := beginMessage(b, num)
	b = appendValidUTF8(b, []byte(s))
	return endMessage(b, start)
}

// validUTF8 is utf8.Valid with an ASCII fast path of eight bytes at a time.
func validUTF8(s []byte) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if le64(s[i:])&0x8080808080808080 != 0 {
			return utf8.Valid(s[i:])
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.Valid(s[i:])
		}
	}
	return true
}

// appendValidUTF8 appends s with each invalid byte sequence replaced by U+FFFD.
func appendValidUTF8(b, s []byte) []byte {
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			b = append(b, c)
			s = s[1:]
			continue
		}
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[:n]...)
		}
		s = s[n:]
	}
	return b
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does not end inside a
// UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// appendTimestampField appends field num as a google.protobuf.Timestamp of unix nanoseconds.
func appendTimestampField(b []byte, num protowire.Number, ns int64) []byte {
	sec, nanos := ns/1e9, ns%1e9
	if nanos < 0 {
		sec, nanos = sec-1, nanos+1e9
	}
	n := 0
	if sec != 0 {
		n += 1 + protowire.SizeVarint(uint64(sec))
	}
	if nanos != 0 {
		n += 1 + protowire.SizeVarint(uint64(nanos))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	if sec != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sec))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	return b
}

// appendLabel appends one map<string,string> entry as field num.
func appendLabel(b []byte, num protowire.Number, k, v string) []byte {
	b, start := beginMessage(b, num)
	b = appendStringFieldS(b, 1, k)
	b = appendStringFieldS(b, 2, v)
	return endMessage(b, start)
}
