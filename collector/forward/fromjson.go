package forward

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/tinylib/msgp/msgp"

	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

var errBadJSON = errors.New("malformed JSON frame")

// appendJSONAsMsgpack transcodes the JSON value at the start of src to msgpack appended to dst,
// so the JSON frames of fluent-logger-golang's MarshalAsJSON take the same decode path as
// msgpack ones. Containers and strings get 32-bit headers patched once their size is known:
// non-minimal, and valid msgpack. Strings are delivered as the peer wrote them (raw control
// characters and invalid UTF-8 kept, as jsonscan.UnquoteRaw does); the record's JSON rendering
// repairs them later.
func appendJSONAsMsgpack(dst, src []byte) ([]byte, []byte, error) {
	dst, i, err := transcodeValue(dst, src, jsonscan.SkipSpace(src, 0), 0)
	return dst, src[i:], err
}

func transcodeValue(dst, b []byte, i, depth int) ([]byte, int, error) {
	if i >= len(b) {
		return dst, i, errBadJSON
	}
	if depth > maxDepth {
		return dst, i, errTooDeep
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		closer := byte('}')
		lead := byte(0xdf) // map32
		if c == '[' {
			closer, lead = ']', 0xdd // array32
		}
		at := len(dst)
		dst = append(dst, lead, 0, 0, 0, 0)
		i = jsonscan.SkipSpace(b, i+1)
		var n uint32
		var err error
		for i < len(b) && b[i] != closer {
			if n > 0 {
				if b[i] != ',' {
					return dst, i, errBadJSON
				}
				i = jsonscan.SkipSpace(b, i+1)
			}
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return dst, i, errBadJSON
				}
				if dst, i, err = transcodeString(dst, b, i); err != nil {
					return dst, i, err
				}
				i = jsonscan.SkipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return dst, i, errBadJSON
				}
				i = jsonscan.SkipSpace(b, i+1)
			}
			if dst, i, err = transcodeValue(dst, b, i, depth+1); err != nil {
				return dst, i, err
			}
			i = jsonscan.SkipSpace(b, i)
			n++
		}
		if i >= len(b) {
			return dst, i, errBadJSON
		}
		binary.BigEndian.PutUint32(dst[at+1:], n)
		return dst, i + 1, nil
	case c == '"':
		return transcodeString(dst, b, i)
	case c == 't':
		if end, ok := jsonscan.Literal(b, i, "true"); ok {
			return msgp.AppendBool(dst, true), end, nil
		}
	case c == 'f':
		if end, ok := jsonscan.Literal(b, i, "false"); ok {
			return msgp.AppendBool(dst, false), end, nil
		}
	case c == 'n':
		if end, ok := jsonscan.Literal(b, i, "null"); ok {
			return msgp.AppendNil(dst), end, nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		// The number is what strconv makes of the run of number characters: laxer than
		// RFC 8259 ("01", "1." pass), kept so as not to refuse what this input has always
		// taken from a peer.
		end, isInt := i, true
		for end < len(b) {
			c := b[end]
			if c == '.' || c == 'e' || c == 'E' || c == '+' {
				isInt = false
			} else if c != '-' && (c < '0' || c > '9') {
				break
			}
			end++
		}
		num := string(b[i:end])
		if isInt {
			if v, err := strconv.ParseInt(num, 10, 64); err == nil {
				return msgp.AppendInt64(dst, v), end, nil
			}
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return dst, i, errBadJSON
		}
		return msgp.AppendFloat64(dst, v), end, nil
	}
	return dst, i, errBadJSON
}

// transcodeString unescapes the JSON string at b[i] into a msgpack str.
func transcodeString(dst, b []byte, i int) ([]byte, int, error) {
	at := len(dst)
	dst = append(dst, 0xdb, 0, 0, 0, 0) // str32
	dst, end, ok := jsonscan.UnquoteRaw(dst, b, i)
	if !ok {
		return dst, i, errBadJSON
	}
	binary.BigEndian.PutUint32(dst[at+1:], uint32(len(dst)-at-5))
	return dst, end, nil
}
