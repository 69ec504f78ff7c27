package cwfake

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

// putEvent is one decoded log event; msg is valid until the next event is decoded.
type putEvent struct {
	ts  int64
	msg []byte
}

// maxDepth bounds nesting in values the fake skips (unknown keys).
const maxDepth = 64

// parsePut decodes a PutLogEvents body without reflection or a string per event (a benchmark
// pushes 100 MiB/s through the fake) on the project's one JSON reader: keys in any order,
// unknown keys skipped, every JSON escape decoded as encoding/json does (a lone surrogate
// becomes U+FFFD). A first pass finds the names and the events; each is then called for every
// event in order.
func parsePut(body []byte, each func(group, stream string, e putEvent) error) (group, stream string, n int, err error) {
	var buf []byte
	eventsAt := -1
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", "", 0, fail(body, i, "want an object")
	}
	i++
	err = members(body, &i, func(key []byte) error {
		switch string(key) {
		case "logGroupName", "logStreamName":
			v, err := str(body, &i, &buf)
			if string(key) == "logGroupName" {
				group = string(v)
			} else {
				stream = string(v)
			}
			return err
		case "logEvents":
			eventsAt = i
		}
		return skip(body, &i)
	})
	if err == nil {
		if j := jsonscan.SkipSpace(body, i); j != len(body) {
			err = fail(body, j, "data after the object")
		}
	}
	if err != nil || eventsAt < 0 {
		return group, stream, 0, err
	}
	i = eventsAt
	if body[i] != '[' {
		return "", "", 0, fail(body, i, "logEvents: want an array")
	}
	i++
	for first := true; ; first = false {
		next, done, ok := jsonscan.Element(body, i, first)
		if !ok {
			return "", "", 0, fail(body, next, "logEvents: want , or ]")
		}
		if i = next; done {
			break
		}
		if body[i] != '{' {
			return "", "", 0, fail(body, i, "logEvents: want an object")
		}
		i++
		var e putEvent
		hasTS, hasMsg := false, false
		err := members(body, &i, func(key []byte) error {
			var err error
			switch string(key) {
			case "timestamp":
				e.ts, err = integer(body, &i)
				hasTS = true
			case "message":
				e.msg, err = str(body, &i, &buf)
				hasMsg = true
			default:
				err = skip(body, &i)
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

// members reads an object from just past its '{', calling value for each member with *i at
// its value, which value must consume. Keys are matched as written (the service matches them
// exactly, unlike encoding/json).
func members(b []byte, i *int, value func(key []byte) error) error {
	var keyBuf []byte
	for first := true; ; first = false {
		key, plain, next, done, ok := jsonscan.Member(b, *i, first)
		if !ok {
			return fail(b, next, "want a member, , or }")
		}
		*i = next
		if done {
			return nil
		}
		if !plain {
			keyBuf, _ = jsonscan.Unquote(keyBuf[:0], key)
			key = keyBuf
		}
		if err := value(key); err != nil {
			return err
		}
	}
}

// str decodes the string at *i into *buf when it needs decoding (else it is a slice of b).
func str(b []byte, i *int, buf *[]byte) ([]byte, error) {
	if *i >= len(b) || b[*i] != '"' {
		return nil, fail(b, *i, "want a string")
	}
	raw, end, plain, ok := jsonscan.String(b, *i)
	if !ok {
		return nil, fail(b, end, "bad string")
	}
	*i = end
	if plain {
		return raw, nil
	}
	*buf, _ = jsonscan.Unquote((*buf)[:0], raw)
	return *buf, nil
}

// integer reads a JSON number that is an int64.
func integer(b []byte, i *int) (int64, error) {
	end, ok := jsonscan.Number(b, *i)
	if !ok {
		return 0, fail(b, *i, "want a number")
	}
	v, err := strconv.ParseInt(string(b[*i:end]), 10, 64)
	if err != nil {
		return 0, fail(b, *i, "want an integer")
	}
	*i = end
	return v, nil
}

func skip(b []byte, i *int) error {
	end, st := jsonscan.Skip(b, *i, maxDepth)
	if st != jsonscan.OK {
		return fail(b, end, "bad value")
	}
	*i = end
	return nil
}

func fail(b []byte, i int, what string) error {
	return fmt.Errorf("malformed PutLogEvents body at byte %d of %d: %s", i, len(b), what)
}
