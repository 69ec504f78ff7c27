package jsonscan

import (
	"encoding/binary"
	"math/bits"

	"github.com/tailgate-dev/tailgate/internal/swar"
)

// MaxDepth is encoding/json's nesting limit: Valid rejects deeper texts as it does.
const MaxDepth = 10000

// Status says why a scan stopped.
type Status uint8

const (
	// OK: the value was read.
	OK Status = iota
	// Invalid: the text is not JSON; the offset returned is the first byte that makes it so.
	Invalid
	// TooDeep: containers nest deeper than the caller allows; the offset is the container's.
	TooDeep
	// TooLarge: a Framer's value runs past its Max.
	TooLarge
)

// spaces has bit c set for each JSON whitespace byte c.
const spaces = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

// SkipSpace returns the offset of the first byte at or after i that is not JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && spaces>>b[i]&1 != 0 {
		i++
	}
	return i
}

func le64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// String scans the string whose opening quote is b[i] and returns its raw content (between the
// quotes, escapes as written) and the offset past its closing quote. plain means the content
// has no escape and no byte >= 0x80: it is the value as it stands. Bytes >= 0x80 are not
// checked for valid UTF-8 (encoding/json accepts the text and repairs the value; see Unquote).
func String(b []byte, i int) (raw []byte, end int, plain, ok bool) {
	start := i + 1
	i = start
	for {
		// Eight bytes at a time up to the first one that needs a look.
		for i+8 <= len(b) {
			if m := swar.JSONSpecial(le64(b, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return nil, i, false, false
		}
		switch c := b[i]; {
		case c == '"':
			return b[start:i], i + 1, true, true
		case c == '\\' || c >= 0x80:
			if c >= 0x80 {
				i++
			}
			if end, ok = stringRest(b, i); !ok {
				return nil, end, false, false
			}
			return b[start : end-1], end, false, true
		case c < 0x20:
			return nil, i, false, false
		}
		i++
	}
}

// stringStop flags (the high bit) the bytes of x a string scan that already knows its string
// is not plain stops at: '"', '\\' and control characters. The lowest flag is exact.
func stringStop(x uint64) uint64 {
	return swar.Control(x) | swar.ZeroBytes(x^(swar.Low*'"')) | swar.ZeroBytes(x^(swar.Low*'\\'))
}

// stringRest is String from b[i] on, for a string known not to be plain.
func stringRest(b []byte, i int) (int, bool) {
	for {
		for i+8 <= len(b) {
			if m := stringStop(le64(b, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return i + 1, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) || !isHex(b[k]) {
						return k, false
					}
				}
				i += 6
			default:
				return i + 1, false
			}
		case c < 0x20:
			return i, false
		default:
			i++
		}
	}
}

func isDigit(c byte) bool { return c-'0' < 10 }

func isHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

// digits returns the offset of the first byte at or after i that is not a digit.
func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// Number scans the number -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? that starts at b[i]
// and returns the offset past it; the number's text is b[i:end].
func Number(b []byte, i int) (end int, ok bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i]-'1' < 9:
		i = digits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = digits(b, i+1)
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = digits(b, i+1)
	}
	return i, true
}

// Literal scans lit ("true", "false" or "null") at b[i].
func Literal(b []byte, i int, lit string) (end int, ok bool) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return i + k, false
		}
	}
	return i + len(lit), true
}

// Skip scans the value at b[i] (after optional whitespace) and returns the offset past it.
// The value may nest maxDepth containers deep (itself included, when it is one); deeper is
// TooDeep.
func Skip(b []byte, i, maxDepth int) (end int, st Status) {
	i = SkipSpace(b, i)
	if i >= len(b) {
		return i, Invalid
	}
	var ok bool
	switch c := b[i]; c {
	case '"':
		_, end, _, ok = String(b, i)
	case '{':
		return skipObject(b, i, maxDepth)
	case '[':
		return skipArray(b, i, maxDepth)
	case 't':
		end, ok = Literal(b, i, "true")
	case 'f':
		end, ok = Literal(b, i, "false")
	case 'n':
		end, ok = Literal(b, i, "null")
	default:
		if c != '-' && !isDigit(c) {
			return i, Invalid
		}
		end, ok = Number(b, i)
	}
	if !ok {
		return end, Invalid
	}
	return end, OK
}

// skipObject and skipArray differ only in Member against Element; one loop with a flag for
// both measured 4% slower on the tail's JSON-object check, so they stay two.

func skipObject(b []byte, i, maxDepth int) (int, Status) {
	if maxDepth < 1 {
		return i, TooDeep
	}
	i++
	var st Status
	for first := true; ; first = false {
		_, _, next, done, ok := Member(b, i, first)
		if !ok {
			return next, Invalid
		}
		if done {
			return next, OK
		}
		// A string, the commonest value, is scanned without Skip's dispatch.
		if next < len(b) && b[next] == '"' {
			if _, i, _, ok = String(b, next); !ok {
				return i, Invalid
			}
		} else if i, st = Skip(b, next, maxDepth-1); st != OK {
			return i, st
		}
	}
}

func skipArray(b []byte, i, maxDepth int) (int, Status) {
	if maxDepth < 1 {
		return i, TooDeep
	}
	i++
	var st Status
	for first := true; ; first = false {
		next, done, ok := Element(b, i, first)
		if !ok {
			return next, Invalid
		}
		if done {
			return next, OK
		}
		if next < len(b) && b[next] == '"' {
			if _, i, _, ok = String(b, next); !ok {
				return i, Invalid
			}
		} else if i, st = Skip(b, next, maxDepth-1); st != OK {
			return i, st
		}
	}
}

// Member steps through an object: at b[i], just past its '{' (first) or past a member's value,
// it reads the ',' and the next member's key and ':', and returns the key's raw content and
// plainness (as String's) and the offset of the value, whitespace skipped. At the closing
// brace it returns done, with next past it.
func Member(b []byte, i int, first bool) (key []byte, plain bool, next int, done, ok bool) {
	i = SkipSpace(b, i)
	if i < len(b) && b[i] == '}' {
		return nil, false, i + 1, true, true
	}
	if !first {
		if i >= len(b) || b[i] != ',' {
			return nil, false, i, false, false
		}
		i = SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return nil, false, i, false, false
	}
	key, end, plain, ok := String(b, i)
	if !ok {
		return nil, false, end, false, false
	}
	j := SkipSpace(b, end)
	if j >= len(b) || b[j] != ':' {
		return nil, false, j, false, false
	}
	return key, plain, SkipSpace(b, j+1), false, true
}

// Element steps through an array: at b[i], just past its '[' (first) or past an element, it
// reads the ',' and returns the offset of the next element, whitespace skipped, or done with
// next past the closing bracket.
func Element(b []byte, i int, first bool) (next int, done, ok bool) {
	if i = SkipSpace(b, i); i < len(b) {
		switch b[i] {
		case ']':
			return i + 1, true, true
		case ',':
			if !first {
				return SkipSpace(b, i+1), false, true
			}
		}
	}
	// The first element starts here (and is checked by whoever reads it); after one, only
	// ',' or ']' may follow.
	return i, false, first
}

// Valid reports whether b is one JSON text, exactly as encoding/json.Valid does.
func Valid(b []byte) bool {
	end, st := Skip(b, 0, MaxDepth)
	return st == OK && SkipSpace(b, end) == len(b)
}

// IsObject reports whether b, with optional surrounding whitespace, is one valid JSON object
// nesting at most maxDepth containers deep (the object itself is one).
func IsObject(b []byte, maxDepth int) bool {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	end, st := skipObject(b, i, maxDepth)
	return st == OK && SkipSpace(b, end) == len(b)
}
