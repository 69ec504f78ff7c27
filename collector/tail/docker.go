package tail

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// dockerParser parses docker json-file lines. It owns the scratch buffer the unescaped
// message is written into, so a line costs no allocation once the buffer has grown.
type dockerParser struct {
	scratch []byte
	times   timeParser
}

// parse reads one docker json-file line (without its newline):
//
//	{"log":"msg\n","stream":"stderr","time":"2019-01-01T11:11:11.111111111Z"}
//
// Fields may come in any order and unknown ones ("attrs") are skipped. A log value without a
// trailing "\n" is a partial: docker splits long lines at 16 KiB. The returned Message points
// into p.scratch and is valid until the next call.
func (p *dockerParser) parse(line []byte) (chunk, bool) {
	var c chunk
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return c, false
	}
	i = skipSpace(line, i+1)
	haveLog := false
	if i < len(line) && line[i] == '}' {
		return c, false
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return c, false
		}
		keyEnd, ok := scanString(line, i)
		if !ok {
			return c, false
		}
		key := line[i+1 : keyEnd-1]
		i = skipSpace(line, keyEnd)
		if i >= len(line) || line[i] != ':' {
			return c, false
		}
		i = skipSpace(line, i+1)
		switch string(key) {
		case "log":
			if i >= len(line) || line[i] != '"' {
				return c, false
			}
			p.scratch, i, ok = unescapeString(p.scratch[:0], line, i)
			if !ok {
				return c, false
			}
			haveLog = true
		case "stream":
			end, ok := scanQuoted(line, i)
			if !ok {
				return c, false
			}
			switch string(line[i+1 : end-1]) {
			case "stdout":
				c.Stream = collector.StreamStdout
			case "stderr":
				c.Stream = collector.StreamStderr
			}
			i = end
		case "time":
			end, ok := scanQuoted(line, i)
			if !ok {
				return c, false
			}
			if c.Time, ok = p.times.parse(line[i+1 : end-1]); !ok {
				return c, false
			}
			i = end
		default:
			if i, ok = scanValue(line, i, 0); !ok {
				return c, false
			}
		}
		i = skipSpace(line, i)
		if i >= len(line) {
			return c, false
		}
		if line[i] == '}' {
			i++
			break
		}
		if line[i] != ',' {
			return c, false
		}
		i = skipSpace(line, i+1)
	}
	if !haveLog || skipSpace(line, i) != len(line) {
		return c, false
	}
	msg := p.scratch
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	} else {
		c.Partial = true
	}
	c.Message = msg
	return c, true
}

// scanQuoted is scanString for a value that must be a string.
func scanQuoted(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	return scanString(b, i)
}

// unescapeString appends the decoded JSON string starting at b[i] (a '"') to dst and returns
// the index past its closing quote. Lone or broken surrogates become U+FFFD.
func unescapeString(dst, b []byte, i int) ([]byte, int, bool) {
	i++
	for {
		start := i
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		dst = append(dst, b[start:i]...)
		if i >= len(b) {
			return dst, i, false
		}
		if b[i] == '"' {
			return dst, i + 1, true
		}
		if i+1 >= len(b) {
			return dst, i, false
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
			i += 2
		case 'b':
			dst = append(dst, '\b')
			i += 2
		case 'f':
			dst = append(dst, '\f')
			i += 2
		case 'n':
			dst = append(dst, '\n')
			i += 2
		case 'r':
			dst = append(dst, '\r')
			i += 2
		case 't':
			dst = append(dst, '\t')
			i += 2
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				return dst, i, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
					r2, ok2 = hex4(b, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, i, false
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v := hexVal(c)
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
