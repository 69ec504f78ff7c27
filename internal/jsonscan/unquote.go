package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/internal/swar"
)

// Both decoders copy the runs between escapes eight bytes at a time: each word is stored whole
// into dst's spare capacity and the output advances to the first byte that ends the run, so
// a short run costs no memmove call. dst must not overlap the input. The two loops differ in
// what ends a run (a backslash or a byte >= 0x80; a quote or a backslash) and stay two so that
// each tests its own constant mask.

// Unquote appends to dst the value of raw, the content of a string String accepted, exactly as
// encoding/json decodes it: escapes resolved, a surrogate pair joined, a lone or broken
// surrogate and each byte of invalid UTF-8 replaced by U+FFFD. replaced reports whether
// anything was replaced.
func Unquote(dst, raw []byte) (out []byte, replaced bool) {
	n := len(dst)
	buf := dst[:cap(dst)]
	j := 0
	for {
		// A run of ASCII without escapes.
		for j+8 <= len(raw) {
			if n+8 > len(buf) {
				buf = grow(buf, n, 8)
			}
			x := le64(raw, j)
			binary.LittleEndian.PutUint64(buf[n:], x)
			if m := (swar.ZeroBytes(x^(swar.Low*'\\')) | x) & swar.High; m != 0 {
				k := bits.TrailingZeros64(m) >> 3
				j, n = j+k, n+k
				goto stop
			}
			j, n = j+8, n+8
		}
		for ; j < len(raw) && raw[j] != '\\' && raw[j] < utf8.RuneSelf; j++ {
			if n >= len(buf) {
				buf = grow(buf, n, 1)
			}
			buf[n] = raw[j]
			n++
		}
		if j >= len(raw) {
			return buf[:n], replaced
		}
	stop:
		if raw[j] == '\\' {
			if c := simpleEscape(raw[j+1]); c != 0 {
				if n >= len(buf) {
					buf = grow(buf, n, 1)
				}
				buf[n] = c
				n, j = n+1, j+2
				continue
			}
			var rep bool
			dst, j, rep, _ = appendEscape(buf[:n], raw, j)
			replaced = replaced || rep
			n, buf = len(dst), dst[:cap(dst)]
			continue
		}
		if n+utf8.UTFMax > len(buf) {
			buf = grow(buf, n, utf8.UTFMax)
		}
		r, size := utf8.DecodeRune(raw[j:])
		if r == utf8.RuneError && size == 1 {
			n += copy(buf[n:], "\uFFFD")
			replaced = true
		} else {
			n += copy(buf[n:], raw[j:j+size])
		}
		j += size
	}
}

// UnquoteRaw decodes the string whose opening quote is b[i] in one pass, appending its value
// to dst, and returns the offset past its closing quote. It is for callers that deliver what a
// peer wrote rather than reject it: escapes are checked and resolved as Unquote resolves them,
// but the bytes between them are copied as they are, raw control characters and invalid
// UTF-8 included. For a string String accepts whose content is valid UTF-8 the value is
// Unquote's. On failure dst holds a partial value.
func UnquoteRaw(dst, b []byte, i int) (out []byte, end int, ok bool) {
	n := len(dst)
	buf := dst[:cap(dst)]
	j := i + 1
	for {
		for j+8 <= len(b) {
			if n+8 > len(buf) {
				buf = grow(buf, n, 8)
			}
			x := le64(b, j)
			binary.LittleEndian.PutUint64(buf[n:], x)
			if m := swar.ZeroBytes(x^(swar.Low*'"')) | swar.ZeroBytes(x^(swar.Low*'\\')); m != 0 {
				k := bits.TrailingZeros64(m) >> 3
				j, n = j+k, n+k
				goto stop
			}
			j, n = j+8, n+8
		}
		for ; j < len(b) && b[j] != '"' && b[j] != '\\'; j++ {
			if n >= len(buf) {
				buf = grow(buf, n, 1)
			}
			buf[n] = b[j]
			n++
		}
		if j >= len(b) {
			return buf[:n], j, false
		}
	stop:
		if b[j] == '"' {
			return buf[:n], j + 1, true
		}
		if j+1 < len(b) {
			if c := simpleEscape(b[j+1]); c != 0 {
				if n >= len(buf) {
					buf = grow(buf, n, 1)
				}
				buf[n] = c
				n, j = n+1, j+2
				continue
			}
		}
		if dst, j, _, ok = appendEscape(buf[:n], b, j); !ok {
			return dst, j, false
		}
		n, buf = len(dst), dst[:cap(dst)]
	}
}

// grow returns buf (its length its capacity) with room for k bytes at n.
func grow(buf []byte, n, k int) []byte {
	buf = slices.Grow(buf[:n], k)
	return buf[:cap(buf)]
}

// simpleEscape returns the byte the two-byte escape \\c stands for, or 0 (\\u or invalid).
func simpleEscape(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}

// appendEscape appends the character the escape sequence at b[i] (a '\\') stands for and
// returns the offset past it. A \u escape of a high surrogate takes the \u escape of a low one
// that follows it; a lone or broken surrogate becomes U+FFFD (replaced), and the escape after a
// broken one is read on its own, as encoding/json reads it. On failure next is the offset of
// the offending byte.
func appendEscape(dst, b []byte, i int) (out []byte, next int, replaced, ok bool) {
	if i+1 >= len(b) {
		return dst, i + 1, false, false
	}
	if c := simpleEscape(b[i+1]); c != 0 {
		return append(dst, c), i + 2, false, true
	}
	if b[i+1] != 'u' {
		return dst, i + 1, false, false
	}
	r, bad := hex4(b, i+2)
	if bad >= 0 {
		return dst, bad, false, false
	}
	i += 6
	if !utf16.IsSurrogate(r) {
		return utf8.AppendRune(dst, r), i, false, true
	}
	r2 := rune(-1)
	if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
		if v, bad := hex4(b, i+2); bad < 0 {
			r2 = v
		}
	}
	if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
		return utf8.AppendRune(dst, dec), i + 6, false, true
	}
	return append(dst, "\uFFFD"...), i, true, true
}

// hex4 reads the four hex digits at b[i:]; bad is the offset of the first byte that is not
// one (or len(b)), -1 when all four are.
func hex4(b []byte, i int) (r rune, bad int) {
	for k := i; k < i+4; k++ {
		if k >= len(b) {
			return 0, k
		}
		c := b[k]
		switch {
		case c-'0' < 10:
			c -= '0'
		case (c|0x20)-'a' < 6:
			c = c | 0x20 - 'a' + 10
		default:
			return 0, k
		}
		r = r<<4 | rune(c)
	}
	return r, -1
}
