package bigquery

import (
	"bytes"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

// maxDepth is encoding/json's nesting limit: deeper texts are rejected as it rejects them.
const maxDepth = jsonscan.MaxDepth

// jsonScanner is the envelope scanner's cursor over one JSON text: the jsonscan primitives
// with encoding/json's error reporting on top. It accepts exactly what encoding/json accepts
// (RFC 8259; strings are not checked for valid UTF-8) and builds no values: a string comes
// back as a slice of the input, or of the scanner's scratch when it had to be unescaped. It
// allocates only when the scratch grows.
//
// A method that fails returns false and leaves pos at the offending byte, and the scan stops
// there: the text was valid exactly when end is reached and succeeds, and err says what went
// wrong where. That keeps the methods small enough to inline, so the envelope costs what the
// primitives cost.
type jsonScanner struct {
	data  []byte
	pos   int
	unq   []byte          // unescaped strings of the current text
	skip  jsonscan.Status // of the last skipValue: TooDeep when it met a container past maxDepth
	valid bool            // end found the end of a valid text
}

func (s *jsonScanner) reset(data []byte) {
	s.data, s.pos, s.unq, s.skip, s.valid = data, 0, s.unq[:0], jsonscan.OK, false
}

// err returns encoding/json's description of where the scan stopped, and the offset; "" when
// the text was valid.
func (s *jsonScanner) err() (msg string, pos int) {
	switch {
	case s.valid:
		return "", 0
	case s.skip == jsonscan.TooDeep:
		return "exceeded max depth", s.pos
	case s.pos >= len(s.data):
		return "unexpected end of JSON input", s.pos
	}
	return "invalid character", s.pos
}

func (s *jsonScanner) skipSpace() { s.pos = jsonscan.SkipSpace(s.data, s.pos) }

// peek skips whitespace and returns the next byte, or 0 at the end (a NUL byte is never
// valid outside a string, so callers need not tell the two apart).
func (s *jsonScanner) peek() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// end reports whether only whitespace is left: the text was valid.
func (s *jsonScanner) end() bool {
	s.skipSpace()
	s.valid = s.pos == len(s.data)
	return s.valid
}

// skipValue moves past the value at pos; depth is the nesting depth of its container.
func (s *jsonScanner) skipValue(depth int) bool {
	s.pos, s.skip = jsonscan.Skip(s.data, s.pos, maxDepth-depth)
	return s.skip == jsonscan.OK
}

// nextKey moves past the separator before an object member and its key, leaving pos at the
// value. It returns done after the closing brace. The key is raw (see scanString).
func (s *jsonScanner) nextKey(first bool) (key []byte, plain, done, ok bool) {
	key, plain, s.pos, done, ok = jsonscan.Member(s.data, s.pos, first)
	return key, plain, done, ok
}

func (s *jsonScanner) literal(lit string) (ok bool) {
	s.pos, ok = jsonscan.Literal(s.data, s.pos, lit)
	return ok
}

// scanString moves past the string at pos and returns its raw contents (between the quotes,
// escapes as written). plain means the raw bytes are the value: no escapes, all ASCII.
func (s *jsonScanner) scanString() (raw []byte, plain, ok bool) {
	raw, s.pos, plain, ok = jsonscan.String(s.data, s.pos)
	return raw, plain, ok
}

// value returns the string a raw string from scanString stands for, as encoding/json
// unquotes it (jsonscan.Unquote): a slice of the input when that is the value already.
func (s *jsonScanner) value(raw []byte, plain bool) []byte {
	if plain || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw
	}
	start := len(s.unq)
	s.unq, _ = jsonscan.Unquote(s.unq, raw)
	return s.unq[start:len(s.unq):len(s.unq)]
}
