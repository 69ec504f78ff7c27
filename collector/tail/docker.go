package tail

import (
	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/internal/jsonscan"
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
// into p.scratch and is valid until the next call. The log value is delivered as written:
// raw control characters and invalid UTF-8 in it are kept (jsonscan.UnquoteRaw); the rest of
// the line must be valid JSON.
func (p *dockerParser) parse(line []byte) (chunk, bool) {
	var c chunk
	i := jsonscan.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return c, false
	}
	i++
	haveLog := false
	for first := true; ; first = false {
		key, next, done, ok := dockerMember(line, i, first)
		if !ok {
			return c, false
		}
		if i = next; done {
			break
		}
		switch string(key) {
		case "log":
			if i >= len(line) || line[i] != '"' {
				return c, false
			}
			if p.scratch, i, ok = jsonscan.UnquoteRaw(p.scratch[:0], line, i); !ok {
				return c, false
			}
			haveLog = true
		case "stream":
			v, end, ok := quoted(line, i)
			if !ok {
				return c, false
			}
			switch string(v) {
			case "stdout":
				c.Stream = collector.StreamStdout
			case "stderr":
				c.Stream = collector.StreamStderr
			}
			i = end
		case "time":
			v, end, ok := quoted(line, i)
			if !ok {
				return c, false
			}
			if c.Time, ok = p.times.parse(v); !ok {
				return c, false
			}
			i = end
		default:
			var st jsonscan.Status
			if i, st = jsonscan.Skip(line, i, maxJSONDepth); st != jsonscan.OK {
				return c, false
			}
		}
	}
	if !haveLog || jsonscan.SkipSpace(line, i) != len(line) {
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

// dockerMember is jsonscan.Member for a docker line: the keys docker writes, in the order and
// the compact form it writes them, are matched as they stand, and anything else is read by
// Member. Keys are compared as written (docker never escapes them).
func dockerMember(b []byte, i int, first bool) (key []byte, next int, done, ok bool) {
	switch {
	case first && hasAt(b, i, `"log":`):
		return b[i+1 : i+4], jsonscan.SkipSpace(b, i+6), false, true
	case !first && hasAt(b, i, `,"stream":`):
		return b[i+2 : i+8], jsonscan.SkipSpace(b, i+10), false, true
	case !first && hasAt(b, i, `,"time":`):
		return b[i+2 : i+6], jsonscan.SkipSpace(b, i+8), false, true
	}
	key, _, next, done, ok = jsonscan.Member(b, i, first)
	return key, next, done, ok
}

func hasAt(b []byte, i int, s string) bool { return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s }

// quoted scans the string at b[i], which must be one, and returns its raw content.
func quoted(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	raw, end, _, ok := jsonscan.String(b, i)
	return raw, end, ok
}
