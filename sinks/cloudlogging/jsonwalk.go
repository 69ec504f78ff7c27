package cloudlogging

import (
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/internal/swar"
)

// maxDepth is the deepest JSON nesting written as Struct/ListValue. Each level costs two or
// three protobuf message levels and Google's parsers stop at 100; a deeper subtree is kept as
// its JSON text in a string value, so nothing is lost and the entry is still accepted.
const maxDepth = 24

// walker turns JSON text into google.protobuf.Struct wire bytes in one pass, validating as it
// goes (RFC 8259, strict: a control character in a string or a trailing comma is an error).
type walker struct {
	src []byte
	pos int
	// replaced: invalid UTF-8 (or a lone UTF-16 surrogate) became U+FFFD somewhere.
	replaced bool
	// deep: a subtree past maxDepth was kept as JSON text.
	deep bool
}

func (w *walker) reset(src []byte) {
	w.src, w.pos, w.replaced, w.deep = src, 0, false, false
}

func (w *walker) skipSpace() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (w *walker) peek() byte {
	w.skipSpace()
	if w.pos < len(w.src) {
		return w.src[w.pos]
	}
	return 0
}

// Struct: fields = 1 (map entry: key = 1, value = 2). Value: null_value = 1, number_value = 2,
// string_value = 3, bool_value = 4, struct_value = 5, list_value = 6. ListValue: values = 1.

// appendMember appends one Struct fields entry: key and the JSON value at w.pos.
func (w *walker) appendMember(b []byte, key []byte, plainKey bool, depth int) ([]byte, bool) {
	b, es := beginMessage(b, 1)
	b = w.appendStringBytes(b, 1, key, plainKey)
	b, vs := beginMessage(b, 2)
	b, ok := w.appendValue(b, depth)
	if !ok {
		return b, false
	}
	b = endMessage(b, vs)
	return endMessage(b, es), true
}

// appendValue appends the content of a Value message for the JSON value at w.pos.
func (w *walker) appendValue(b []byte, depth int) ([]byte, bool) {
	switch c := w.peek(); c {
	case '{', '[':
		if depth >= maxDepth {
			start := w.pos
			if !w.skipValue(depth) {
				return b, false
			}
			w.deep = true
			var rep bool
			b, rep = appendStringField(b, 3, w.src[start:w.pos])
			w.replaced = w.replaced || rep
			return b, true
		}
		var s int
		var ok bool
		if c == '{' {
			b, s = beginMessage(b, 5)
			b, ok = w.appendObject(b, depth+1)
		} else {
			b, s = beginMessage(b, 6)
			b, ok = w.appendArray(b, depth+1)
		}
		if !ok {
			return b, false
		}
		return endMessage(b, s), true
	case '"':
		raw, plain, ok := w.scanString()
		if !ok {
			return b, false
		}
		return w.appendStringBytes(b, 3, raw, plain), true
	case 't':
		if !w.literal("true") {
			return b, false
		}
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		return append(b, 1), true
	case 'f':
		if !w.literal("false") {
			return b, false
		}
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		return append(b, 0), true
	case 'n':
		if !w.literal("null") {
			return b, false
		}
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		return append(b, 0), true
	}
	num, ok := w.scanNumber()
	if !ok {
		return b, false
	}
	f, exact := parseNumber(num)
	if !exact {
		// Out of double range: a Value cannot hold ±Inf, so keep the digits.
		return protowire.AppendBytes(protowire.AppendTag(b, 3, protowire.BytesType), num), true
	}
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(f)), true
}

// appendObject appends the content of a Struct for the object at w.pos.
func (w *walker) appendObject(b []byte, depth int) ([]byte, bool) {
	w.pos++ // '{'
	if w.peek() == '}' {
		w.pos++
		return b, true
	}
	for {
		if w.peek() != '"' {
			return b, false
		}
		key, plain, ok := w.scanString()
		if !ok || w.peek() != ':' {
			return b, false
		}
		w.pos++
		if b, ok = w.appendMember(b, key, plain, depth); !ok {
			return b, false
		}
		switch w.peek() {
		case ',':
			w.pos++
		case '}':
			w.pos++
			return b, true
		default:
			return b, false
		}
	}
}

// appendArray appends the content of a ListValue for the array at w.pos.
func (w *walker) appendArray(b []byte, depth int) ([]byte, bool) {
	w.pos++ // '['
	if w.peek() == ']' {
		w.pos++
		return b, true
	}
	for {
		var s int
		var ok bool
		b, s = beginMessage(b, 1)
		if b, ok = w.appendValue(b, depth); !ok {
			return b, false
		}
		b = endMessage(b, s)
		switch w.peek() {
		case ',':
			w.pos++
		case ']':
			w.pos++
			return b, true
		default:
			return b, false
		}
	}
}

// skipValue moves past the JSON value at w.pos, validating it.
func (w *walker) skipValue(depth int) bool {
	switch c := w.peek(); c {
	case '{':
		if depth > 1000 {
			return false
		}
		w.pos++
		if w.peek() == '}' {
			w.pos++
			return true
		}
		for {
			if w.peek() != '"' {
				return false
			}
			if _, _, ok := w.scanString(); !ok || w.peek() != ':' {
				return false
			}
			w.pos++
			if !w.skipValue(depth + 1) {
				return false
			}
			switch w.peek() {
			case ',':
				w.pos++
			case '}':
				w.pos++
				return true
			default:
				return false
			}
		}
	case '[':
		if depth > 1000 {
			return false
		}
		w.pos++
		if w.peek() == ']' {
			w.pos++
			return true
		}
		for {
			if !w.skipValue(depth + 1) {
				return false
			}
			switch w.peek() {
			case ',':
				w.pos++
			case ']':
				w.pos++
				return true
			default:
				return false
			}
		}
	case '"':
		_, _, ok := w.scanString()
		return ok
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	}
	_, ok := w.scanNumber()
	return ok
}

func (w *walker) literal(lit string) bool {
	if len(w.src)-w.pos < len(lit) || string(w.src[w.pos:w.pos+len(lit)]) != lit {
		return false
	}
	w.pos += len(lit)
	return true
}

// scanString moves past the string at w.pos and returns its raw content (between the quotes);
// plain says it has no escapes and only ASCII, so it can be written as it is.
func (w *walker) scanString() (raw []byte, plain, ok bool) {
	w.pos++ // '"'
	start := w.pos
	plain = true
	s := w.src
	i := w.pos
	for {
		for i+8 <= len(s) {
			m := swar.JSONSpecial(le64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		if i >= len(s) {
			return nil, false, false
		}
		switch c := s[i]; {
		case c == '"':
			w.pos = i + 1
			return s[start:i], plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(s) {
				return nil, false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || hex4(s[i+2:i+6]) < 0 {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false
			i++
		default:
			i++
		}
	}
}

// appendStringBytes appends field num holding the JSON string content raw, unescaped, as UTF-8.
func (w *walker) appendStringBytes(b []byte, num protowire.Number, raw []byte, plain bool) []byte {
	if plain {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, raw)
	}
	b, s := beginMessage(b, num)
	b = w.appendUnescaped(b, raw)
	return endMessage(b, s)
}

// appendUnescaped appends the JSON string content raw (already validated by scanString),
// unescaped, with invalid UTF-8 and lone surrogates replaced by U+FFFD.
func (w *walker) appendUnescaped(b, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := rune(hex4(raw[i+2 : i+6]))
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = rune(hex4(raw[i+2 : i+6]))
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
						w.replaced = true
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(raw) && raw[j] != '\\' && raw[j] < utf8.RuneSelf {
				j++
			}
			b = append(b, raw[i:j]...)
			i = j
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, "\uFFFD"...)
				w.replaced = true
			} else {
				b = append(b, raw[i:i+n]...)
			}
			i += n
		}
	}
	return b
}

// hex4 returns the value of four hex digits, or -1.
func hex4(h []byte) int {
	v := 0
	for _, c := range h[:4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			v = v<<4 | int(c|0x20-'a'+10)
		default:
			return -1
		}
	}
	return v
}

// scanNumber moves past the JSON number at w.pos and returns its text.
func (w *walker) scanNumber() ([]byte, bool) {
	s, i := w.src, w.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	num := s[w.pos:i]
	w.pos = i
	return num, true
}

// parseNumber converts JSON number text to a double; exact is false when it is out of range.
func parseNumber(num []byte) (f float64, exact bool) {
	// Integers of up to 15 digits are exact doubles: the common case, without strconv.
	neg := num[0] == '-'
	d := num
	if neg {
		d = d[1:]
	}
	if len(d) <= 15 {
		var n int64
		for _, c := range d {
			if c < '0' || c > '9' {
				goto slow
			}
			n = n*10 + int64(c-'0')
		}
		if neg {
			return -float64(n), true
		}
		return float64(n), true
	}
slow:
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
