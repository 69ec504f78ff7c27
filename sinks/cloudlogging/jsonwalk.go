package cloudlogging

import (
	"math"
	"strconv"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

// maxDepth is the deepest JSON nesting written as Struct/ListValue. Each level costs two or
// three protobuf message levels and Google's parsers stop at 100; a deeper subtree is kept as
// its JSON text in a string value, so nothing is lost and the entry is still accepted.
const maxDepth = 24

// walker turns JSON text into google.protobuf.Struct wire bytes in one pass, validating as it
// goes (RFC 8259, strict: a control character in a string or a trailing comma is an error).
// Its cursor moves with the jsonscan primitives; what it adds is the protobuf it writes and
// the two things it notes on the way.
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

func (w *walker) skipSpace() { w.pos = jsonscan.SkipSpace(w.src, w.pos) }

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
	for first := true; ; first = false {
		key, plain, next, done, ok := jsonscan.Member(w.src, w.pos, first)
		if w.pos = next; !ok || done {
			return b, ok
		}
		if b, ok = w.appendMember(b, key, plain, depth); !ok {
			return b, false
		}
	}
}

// appendArray appends the content of a ListValue for the array at w.pos.
func (w *walker) appendArray(b []byte, depth int) ([]byte, bool) {
	w.pos++ // '['
	for first := true; ; first = false {
		next, done, ok := jsonscan.Element(w.src, w.pos, first)
		if w.pos = next; !ok || done {
			return b, ok
		}
		var s int
		b, s = beginMessage(b, 1)
		if b, ok = w.appendValue(b, depth); !ok {
			return b, false
		}
		b = endMessage(b, s)
	}
}

// maxSkipDepth is how deep skipValue lets containers nest (a deep subtree is skipped to be
// kept as text; past this it is not JSON the entry can carry).
const maxSkipDepth = 1000

// The cursor's moves. A move that fails returns false and leaves w.pos at the offending byte:
// a caller that only tried a reading puts w.pos back; the others give up. They are kept small
// enough to inline.

// skipValue moves past the JSON value at w.pos, validating it; depth is the value's own.
func (w *walker) skipValue(depth int) bool {
	var st jsonscan.Status
	w.pos, st = jsonscan.Skip(w.src, w.pos, maxSkipDepth+1-depth)
	return st == jsonscan.OK
}

func (w *walker) literal(lit string) (ok bool) {
	w.pos, ok = jsonscan.Literal(w.src, w.pos, lit)
	return ok
}

// scanString moves past the string at w.pos and returns its raw content (between the quotes);
// plain says it has no escapes and only ASCII, so it can be written as it is.
func (w *walker) scanString() (raw []byte, plain, ok bool) {
	raw, w.pos, plain, ok = jsonscan.String(w.src, w.pos)
	return raw, plain, ok
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
	b, rep := jsonscan.Unquote(b, raw)
	w.replaced = w.replaced || rep
	return b
}

// scanNumber moves past the JSON number at w.pos and returns its text.
func (w *walker) scanNumber() (num []byte, ok bool) {
	i := w.pos
	w.pos, ok = jsonscan.Number(w.src, i)
	return w.src[i:w.pos], ok
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
