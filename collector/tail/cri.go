package tail

import (
	"bytes"

	"github.com/tailgate-dev/tailgate/collector"
)

// parseCRI parses one CRI log line (without its newline):
//
//	2016-10-06T00:17:09.669794202Z stdout F the message
//
// The tag is "P" for a partial chunk and "F" for the last one; later CRI versions may append
// more tags after a ':' ("F:x"), which are ignored. Message points into line.
func parseCRI(line []byte) (chunk, bool) {
	var tp timeParser
	return parseCRIWith(&tp, line)
}

// parseCRIWith is parseCRI reading the time with tp, which remembers the last second.
func parseCRIWith(tp *timeParser, line []byte) (chunk, bool) {
	var c chunk
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return c, false
	}
	t, ok := tp.parse(line[:sp])
	if !ok {
		return c, false
	}
	c.Time = t
	rest := line[sp+1:]
	switch {
	case len(rest) > 7 && string(rest[:7]) == "stdout ":
		c.Stream = collector.StreamStdout
	case len(rest) > 7 && string(rest[:7]) == "stderr ":
		c.Stream = collector.StreamStderr
	default:
		return c, false
	}
	rest = rest[7:]
	end := bytes.IndexByte(rest, ' ')
	tags := rest
	if end >= 0 {
		tags = rest[:end]
		c.Message = rest[end+1:]
	} else {
		c.Message = rest[len(rest):]
	}
	if i := bytes.IndexByte(tags, ':'); i >= 0 {
		tags = tags[:i]
	}
	switch string(tags) {
	case "F":
	case "P":
		c.Partial = true
	default:
		return c, false
	}
	return c, true
}
