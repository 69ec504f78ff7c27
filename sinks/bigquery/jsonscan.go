package bigquery

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/internal/swar"
)

// maxDepth is encoding/json's nesting limit: deeper texts are rejected as it rejects them.
const maxDepth = 10000

// jsonScanner walks one JSON text in place. It accepts exactly what encoding/json accepts
// (RFC 8259; strings are not checked for valid UTF-8) and builds no values: a string comes
// back as a slice of the input, or of the scanner's scratch when it had to be unescaped. It
// allocates only when the scratch grows. The first syntax error is kept; every method returns
// false once there is one.
type jsonScanner struct {
	data   []byte
	pos    int
	unq    []byte // unescaped strings of the current text
	errMsg string // "" while the text is valid so far
	errPos int
}

func (s *jsonScanner) reset(data []byte) {
	s.data, s.pos, s.unq, s.errMsg, s.errPos = data, 0, s.unq[:0], "", 0
}

// syntaxError records a syntax error at pos, unless one was recorded; it returns false.
func (s *jsonScanner) syntaxError(pos int) bool {
	if s.errMsg == "" {
		s.errPos = pos
		if pos >= len(s.data) {
			s.errMsg = "unexpected end of JSON input"
		} else {
			s.errMsg = "invalid character"
		}
	}
	return false
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end (a NUL byte is never
// valid outside a string, so callers need not tell the two apart).
func (s *jsonScanner) peek() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// end reports whether only whitespace is left.
func (s *jsonScanner) end() bool {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.syntaxError(s.pos)
	}
	return true
}

// skipValue moves past the value at pos; depth is the nesting depth of its container.
func (s *jsonScanner) skipValue(depth int) bool {
	switch c := s.peek(); c {
	case '{':
		return s.skipObject(depth + 1)
	case '[':
		return s.skipArray(depth + 1)
	case '"':
		_, _, ok := s.scanString()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return s.number()
		}
		return s.syntaxError(s.pos)
	}
}

// nextKey moves past the separator before an object member and its key, leaving pos at the
// value. It returns done after the closing brace. The key is raw (see scanString).
func (s *jsonScanner) nextKey(first bool) (key []byte, plain, done, ok bool) {
	c := s.peek()
	if c == '}' && first {
		s.pos++
		return nil, false, true, true
	}
	if !first {
		switch c {
		case '}':
			s.pos++
			return nil, false, true, true
		case ',':
			s.pos++
			c = s.peek()
		default:
			return nil, false, false, s.syntaxError(s.pos)
		}
	}
	if c != '"' {
		return nil, false, false, s.syntaxError(s.pos)
	}
	key, plain, ok = s.scanString()
	if !ok {
		return nil, false, false, false
	}
	if s.peek() != ':' {
		return nil, false, false, s.syntaxError(s.pos)
	}
	s.pos++
	return key, plain, false, true
}

func (s *jsonScanner) depthError() bool {
	if s.errMsg == "" {
		s.errMsg, s.errPos = "exceeded max depth", s.pos
	}
	return false
}

// skipObject moves past the object at pos, which holds its members at depth.
func (s *jsonScanner) skipObject(depth int) bool {
	if depth > maxDepth {
		return s.depthError()
	}
	s.pos++ // '{'
	for first := true; ; first = false {
		_, _, done, ok := s.nextKey(first)
		if !ok || done {
			return ok
		}
		if !s.skipValue(depth) {
			return false
		}
	}
}

func (s *jsonScanner) skipArray(depth int) bool {
	if depth > maxDepth {
		return s.depthError()
	}
	s.pos++ // '['
	if s.peek() == ']' {
		s.pos++
		return true
	}
	for {
		if !s.skipValue(depth) {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return true
		default:
			return s.syntaxError(s.pos)
		}
	}
}

func (s *jsonScanner) literal(lit string) bool {
	for i := 0; i < len(lit); i++ {
		if s.pos+i >= len(s.data) || s.data[s.pos+i] != lit[i] {
			return s.syntaxError(s.pos + i)
		}
	}
	s.pos += len(lit)
	return true
}

// number moves past -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && isDigit(d[i]):
		i = skipDigits(d, i)
	default:
		return s.syntaxError(i)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return s.syntaxError(i)
		}
		i = skipDigits(d, i)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return s.syntaxError(i)
		}
		i = skipDigits(d, i)
	}
	s.pos = i
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// scanString moves past the string at pos and returns its raw contents (between the quotes,
// escapes as written). plain means the raw bytes are the value: no escapes, all ASCII.
func (s *jsonScanner) scanString() (raw []byte, plain, ok bool) {
	d := s.data
	start := s.pos + 1
	i := start
	plain = true
	for {
		// Eight bytes at a time up to the first byte that needs a look.
		for i+8 <= len(d) {
			m := swar.JSONSpecial(binary.LittleEndian.Uint64(d[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(d) {
			return nil, false, s.syntaxError(i)
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return d[start:i], plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(d) {
				return nil, false, s.syntaxError(i)
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(d) || !isHex(d[i+k]) {
						return nil, false, s.syntaxError(i + k)
					}
				}
				i += 5
			default:
				return nil, false, s.syntaxError(i)
			}
		case c < 0x20:
			return nil, false, s.syntaxError(i)
		case c >= utf8.RuneSelf:
			plain = false
			i++
		default:
			i++
		}
	}
}

// value returns the string a raw string from scanString stands for, as encoding/json
// unquotes it: escapes resolved, a lone or broken surrogate and each byte of invalid UTF-8
// replaced by U+FFFD.
func (s *jsonScanner) value(raw []byte, plain bool) []byte {
	if plain || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw
	}
	start := len(s.unq)
	s.unq = appendUnquoted(s.unq, raw)
	return s.unq[start:len(s.unq):len(s.unq)]
}

// appendUnquoted appends the value of raw, which scanString has checked.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

// hex4 reads four hex digits that scanString has checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			c -= '0'
		default:
			c = c | 0x20 - 'a' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
