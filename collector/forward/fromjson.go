package forward

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
)

var errBadJSON = errors.New("malformed JSON frame")

// appendJSONAsMsgpack transcodes the JSON value at the start of src to msgpack appended to dst,
// so the JSON frames of fluent-logger-golang's MarshalAsJSON take the same decode path as
// msgpack ones. Containers and strings get 32-bit headers patched once their size is known:
// non-minimal, and valid msgpack.
func appendJSONAsMsgpack(dst, src []byte) ([]byte, []byte, error) {
	return transcodeValue(dst, skipSpace(src), 0)
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func transcodeValue(dst, b []byte, depth int) ([]byte, []byte, error) {
	if len(b) == 0 {
		return dst, b, errBadJSON
	}
	if depth > maxDepth {
		return dst, b, errTooDeep
	}
	switch c := b[0]; {
	case c == '{' || c == '[':
		closer := byte('}')
		lead := byte(0xdf) // map32
		if c == '[' {
			closer, lead = ']', 0xdd // array32
		}
		at := len(dst)
		dst = append(dst, lead, 0, 0, 0, 0)
		b = skipSpace(b[1:])
		var n uint32
		var err error
		for len(b) > 0 && b[0] != closer {
			if n > 0 {
				if b[0] != ',' {
					return dst, b, errBadJSON
				}
				b = skipSpace(b[1:])
			}
			if c == '{' {
				if len(b) == 0 || b[0] != '"' {
					return dst, b, errBadJSON
				}
				if dst, b, err = transcodeString(dst, b); err != nil {
					return dst, b, err
				}
				b = skipSpace(b)
				if len(b) == 0 || b[0] != ':' {
					return dst, b, errBadJSON
				}
				b = skipSpace(b[1:])
			}
			if dst, b, err = transcodeValue(dst, b, depth+1); err != nil {
				return dst, b, err
			}
			b = skipSpace(b)
			n++
		}
		if len(b) == 0 {
			return dst, b, errBadJSON
		}
		binary.BigEndian.PutUint32(dst[at+1:], n)
		return dst, b[1:], nil
	case c == '"':
		return transcodeString(dst, b)
	case c == 't' && len(b) >= 4 && string(b[:4]) == "true":
		return msgp.AppendBool(dst, true), b[4:], nil
	case c == 'f' && len(b) >= 5 && string(b[:5]) == "false":
		return msgp.AppendBool(dst, false), b[5:], nil
	case c == 'n' && len(b) >= 4 && string(b[:4]) == "null":
		return msgp.AppendNil(dst), b[4:], nil
	case c == '-' || (c >= '0' && c <= '9'):
		end, isInt := 0, true
		for end < len(b) {
			c := b[end]
			if c == '.' || c == 'e' || c == 'E' || c == '+' {
				isInt = false
			} else if c != '-' && (c < '0' || c > '9') {
				break
			}
			end++
		}
		num := string(b[:end])
		if isInt {
			if v, err := strconv.ParseInt(num, 10, 64); err == nil {
				return msgp.AppendInt64(dst, v), b[end:], nil
			}
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return dst, b, errBadJSON
		}
		return msgp.AppendFloat64(dst, v), b[end:], nil
	}
	return dst, b, errBadJSON
}

// transcodeString unescapes the JSON string at b into a msgpack str.
func transcodeString(dst, b []byte) ([]byte, []byte, error) {
	at := len(dst)
	dst = append(dst, 0xdb, 0, 0, 0, 0) // str32
	i := 1
	for {
		if i >= len(b) {
			return dst, b, errBadJSON
		}
		c := b[i]
		switch {
		case c == '"':
			binary.BigEndian.PutUint32(dst[at+1:], uint32(len(dst)-at-5))
			return dst, b[i+1:], nil
		case c == '\\':
			if i+1 >= len(b) {
				return dst, b, errBadJSON
			}
			e := b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
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
				r, ok := hex4(b[i:])
				if !ok {
					return dst, b, errBadJSON
				}
				i += 4
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(b[min(i+2, len(b)):]); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
							i += 6
						}
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return dst, b, errBadJSON
			}
		default:
			dst = append(dst, c)
			i++
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
