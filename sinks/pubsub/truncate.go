package pubsub

import (
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// appendFitted appends r's envelope to dst within budget bytes. When the whole envelope does
// not fit it cuts the message (on a character boundary, counting its JSON escapes), and if
// that is not enough it also drops the fields object and the tag, and marks the copy it
// encodes FlagTruncated. ok is false when even that does not fit; dst is then unchanged.
func appendFitted(dst []byte, r *collector.Record, budget int) (out []byte, truncated, ok bool) {
	start := len(dst)
	dst = r.AppendJSON(dst)
	total := len(dst) - start
	if total <= budget {
		return dst, false, true
	}
	dst = dst[:start]

	c := *r
	c.Flags |= collector.FlagTruncated
	// rest is the envelope without the message's quoted string.
	rest := total - quotedLen(c.Message)
	if rest+2 > budget && len(c.Fields) > 0 {
		rest -= len(c.Fields) - len("{}")
		c.Fields = nil
	}
	if rest+2 > budget && len(c.Tag) > 0 {
		rest -= quotedLen(c.Tag) - len(`""`)
		c.Tag = nil
	}
	if rest+2 > budget {
		return dst, false, false
	}
	c.Message = c.Message[:escapedPrefix(c.Message, budget-rest-2)]
	return c.AppendJSON(dst), true, true
}

// quotedLen is len(collector.AppendJSONString(nil, s)), without writing it.
func quotedLen(s []byte) int {
	n := 2
	for i := 0; i < len(s); {
		w, size := escapedRune(s[i:])
		n += w
		i += size
	}
	return n
}

// escapedPrefix returns the length of the longest prefix of s, ending on a character
// boundary, whose JSON escaping (without quotes) takes at most max bytes.
func escapedPrefix(s []byte, max int) int {
	n := 0
	for i := 0; i < len(s); {
		w, size := escapedRune(s[i:])
		if n+w > max {
			return i
		}
		n += w
		i += size
	}
	return len(s)
}

// escapedRune returns how many bytes collector.AppendJSONString writes for the first character
// of s, and how many bytes of s that character takes. It must match AppendJSONString exactly;
// FuzzAppendFitted checks that it does.
func escapedRune(s []byte) (written, size int) {
	b := s[0]
	if b < utf8.RuneSelf {
		switch {
		case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
			return 2, 1
		case b < 0x20:
			return 6, 1 // \u00XX
		}
		return 1, 1
	}
	r, size := utf8.DecodeRune(s)
	if r == utf8.RuneError && size == 1 {
		return 6, 1 // \ufffd
	}
	return size, size
}
