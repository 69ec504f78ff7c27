package cwfake

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// putEvent is one decoded log event; msg is valid until the next event is decoded.
type putEvent struct {
	ts  int64
	msg []byte
}

// parsePut decodes a PutLogEvents body without reflection or a string per event (a benchmark
// pushes 100 MiB/s through the fake): keys in any order, unknown keys skipped, every JSON
// escape decoded as encoding/json does (a lone surrogate becomes U+FFFD). A first pass finds
// the names and the events; each is then called for every event in order.
func parsePut(body []byte, each func(group, stream string, e putEvent) error) (group, stream string, n int, err error) {
	s := &scan{b: body}
	// First pass: the names and the events' position.
	eventsAt := -1
	s.ws()
	err = s.members(func(key []byte) error {
		switch string(key) {
		case "logGroupName", "logStreamName":
			v, err := s.str(nil)
			if string(key) == "logGroupName" {
				group = string(v)
			} else {
				stream = string(v)
			}
			return err
		case "logEvents":
			eventsAt = s.i
		}
		return s.skip()
	})
	if err != nil || eventsAt < 0 {
		return group, stream, 0, err
	}
	s.i = eventsAt
	if !s.eat('[') {
		return "", "", 0, s.fail("logEvents: want an array")
	}
	var buf []byte
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			break
		}
		if !first && !s.eat(',') {
			return "", "", 0, s.fail("logEvents: want , or ]")
		}
		s.ws()
		var e putEvent
		hasTS, hasMsg := false, false
		err := s.members(func(key []byte) error {
			var err error
			switch string(key) {
			case "timestamp":
				e.ts, err = s.int()
				hasTS = true
			case "message":
				buf, err = s.str(buf[:0])
				e.msg, hasMsg = buf, true
			default:
				err = s.skip()
			}
			return err
		})
		if err != nil {
			return "", "", 0, err
		}
		if !hasTS || !hasMsg {
			return "", "", 0, errors.New("logEvents[" + strconv.Itoa(n) + "]: timestamp and message are required")
		}
		if err := each(group, stream, e); err != nil {
			return "", "", 0, err
		}
		n++
	}
	return group, stream, n, nil
}

// members reads an object, calling value for each member with the scanner at its value, which
// value must consume.
func (s *scan) members(value func(key []byte) error) error {
	if !s.eat('{') {
		return s.fail("want an object")
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return nil
		}
		if !first && !s.eat(',') {
			return s.fail("want , or }")
		}
		s.ws()
		key, err := s.str(nil)
		if err != nil {
			return err
		}
		s.ws()
		if !s.eat(':') {
			return s.fail("want :")
		}
		s.ws()
		if err := value(key); err != nil {
			return err
		}
	}
}

type scan struct {
	b []byte
	i int
}

func (s *scan) fail(what string) error {
	return errors.New("malformed JSON at offset " + strconv.Itoa(s.i) + ": " + what)
}

func (s *scan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\r' || s.b[s.i] == '\t') {
		s.i++
	}
}

func (s *scan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str decodes a string value, appending it to dst when given; a string without escapes is
// returned as a slice of the body when dst is nil.
func (s *scan) str(dst []byte) ([]byte, error) {
	if !s.eat('"') {
		return nil, s.fail("want a string")
	}
	start := s.i
	for s.i < len(s.b) && s.b[s.i] != '"' && s.b[s.i] != '\\' {
		if s.b[s.i] < 0x20 {
			return nil, s.fail("control character in a string")
		}
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '"' {
		s.i++
		if dst == nil {
			return s.b[start : s.i-1], nil
		}
		return append(dst, s.b[start:s.i-1]...), nil
	}
	dst = append(dst, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return dst, nil
		case c < 0x20:
			return nil, s.fail("control character in a string")
		case c != '\\':
			dst = append(dst, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
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
			r, ok := s.hex4()
			if !ok {
				return nil, s.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				save := s.i
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok := s.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							continue
						}
					}
				}
				s.i = save
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return nil, s.fail("bad escape")
		}
	}
	return nil, s.fail("unterminated string")
}

// skipStr passes over a string without decoding it.
func (s *scan) skipStr() error {
	if !s.eat('"') {
		return s.fail("want a string")
	}
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return s.fail("unterminated string")
}

func (s *scan) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

func (s *scan) int() (int64, error) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		return 0, s.fail("want an integer")
	}
	return v, nil
}

// skip passes over any value.
func (s *scan) skip() error {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("want a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipStr()
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.eat(closing) {
				return nil
			}
			if !first && !s.eat(',') {
				return s.fail("want ,")
			}
			s.ws()
			if c == '{' {
				if err := s.skipStr(); err != nil {
					return err
				}
				s.ws()
				if !s.eat(':') {
					return s.fail("want :")
				}
			}
			if err := s.skip(); err != nil {
				return err
			}
		}
	default:
		start := s.i
		for s.i < len(s.b) && s.b[s.i] != ',' && s.b[s.i] != '}' && s.b[s.i] != ']' && s.b[s.i] != ' ' && s.b[s.i] != '\n' {
			s.i++
		}
		switch v := string(s.b[start:s.i]); v {
		case "true", "false", "null":
			return nil
		default:
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return s.fail("bad literal " + strconv.Quote(v))
			}
		}
	}
	return nil
}
