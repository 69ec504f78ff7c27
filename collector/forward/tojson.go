package forward

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

var errBadValue = errors.New("unsupported msgpack value")

// messageKeys are the record keys whose string value becomes the envelope message, in order
// of preference.
var messageKeys = [...]string{"message", "log", "msg"}

// appendRecordJSON converts the msgpack map at the start of b to a JSON object appended to dst.
// It returns the rest of b and the raw bytes of the preferred message value (a slice of b),
// without building anything per key.
func appendRecordJSON(dst, b []byte) (out, rest, msg []byte, err error) {
	if msgp.NextType(b) != msgp.MapType {
		return dst, b, nil, errBadValue
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, nil, err
	}
	msgRank := len(messageKeys)
	dst = append(dst, '{')
	for i := uint32(0); i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var key []byte
		key, dst, b, err = appendKey(dst, b)
		if err != nil {
			return dst, b, nil, err
		}
		dst = append(dst, ':')
		r := len(messageKeys)
		if msgRank > 0 {
			r = messageRank(key)
		}
		if r < msgRank {
			// A str or bin value under a message key is the envelope message.
			if v, ok := stringValue(b); ok {
				msg, msgRank = v, r
			}
		}
		dst, b, err = appendValueJSON(dst, b, 1)
		if err != nil {
			return dst, b, nil, err
		}
	}
	return append(dst, '}'), b, msg, nil
}

func messageRank(key []byte) int {
	switch string(key) {
	case messageKeys[0]:
		return 0
	case messageKeys[1]:
		return 1
	case messageKeys[2]:
		return 2
	}
	return len(messageKeys)
}

// stringValue returns the payload of a str or bin value at b.
func stringValue(b []byte) ([]byte, bool) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		v, _, err := msgp.ReadStringZC(b)
		return v, err == nil
	case msgp.BinType:
		v, _, err := msgp.ReadBytesZC(b)
		return v, err == nil
	}
	return nil, false
}

// appendKey writes a map key as a JSON string. String keys are the rule; a number or bool key
// is written as its text so the object stays valid JSON.
func appendKey(dst, b []byte) (key, out, rest []byte, err error) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		key, rest, err = msgp.ReadStringZC(b)
		return key, collector.AppendJSONString(dst, key), rest, err
	case msgp.BinType:
		key, rest, err = msgp.ReadBytesZC(b)
		return key, appendJSONText(dst, key), rest, err
	case msgp.IntType, msgp.UintType, msgp.BoolType, msgp.NilType, msgp.Float32Type, msgp.Float64Type:
		start := len(dst)
		dst, rest, err = appendValueJSON(dst, b, maxDepth)
		if err != nil {
			return nil, dst, rest, err
		}
		// Scalar JSON text has no characters that need escaping: quote it in place.
		dst = append(dst, 0, 0)
		copy(dst[start+1:], dst[start:len(dst)-2])
		dst[start] = '"'
		dst[len(dst)-1] = '"'
		return nil, dst, rest, nil
	}
	return nil, dst, b, errBadValue
}

// appendJSONText writes bytes as a JSON string: valid UTF-8 as text, anything else as base64
// (a bin value holding an image, say, must not be mangled into U+FFFD).
func appendJSONText(dst, v []byte) []byte {
	if utf8.Valid(v) {
		return collector.AppendJSONString(dst, v)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, '"')
}

// appendValueJSON converts one msgpack value to JSON. depth counts the enclosing containers.
func appendValueJSON(dst, b []byte, depth int) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errTooDeep
	}
	var err error
	switch msgp.NextType(b) {
	case msgp.StrType:
		var v []byte
		v, b, err = msgp.ReadStringZC(b)
		if err != nil {
			return dst, b, err
		}
		return collector.AppendJSONString(dst, v), b, nil
	case msgp.BinType:
		var v []byte
		v, b, err = msgp.ReadBytesZC(b)
		if err != nil {
			return dst, b, err
		}
		return appendJSONText(dst, v), b, nil
	case msgp.IntType:
		var v int64
		v, b, err = msgp.ReadInt64Bytes(b)
		return strconv.AppendInt(dst, v, 10), b, err
	case msgp.UintType:
		var v uint64
		v, b, err = msgp.ReadUint64Bytes(b)
		return strconv.AppendUint(dst, v, 10), b, err
	case msgp.Float32Type:
		var v float32
		v, b, err = msgp.ReadFloat32Bytes(b)
		return appendFloat(dst, float64(v), 32), b, err
	case msgp.Float64Type:
		var v float64
		v, b, err = msgp.ReadFloat64Bytes(b)
		return appendFloat(dst, v, 64), b, err
	case msgp.BoolType:
		var v bool
		v, b, err = msgp.ReadBoolBytes(b)
		return strconv.AppendBool(dst, v), b, err
	case msgp.NilType:
		b, err = msgp.ReadNilBytes(b)
		return append(dst, "null"...), b, err
	case msgp.ArrayType:
		var n uint32
		n, b, err = msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return dst, b, err
		}
		dst = append(dst, '[')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst, b, err = appendValueJSON(dst, b, depth+1)
			if err != nil {
				return dst, b, err
			}
		}
		return append(dst, ']'), b, nil
	case msgp.MapType:
		var n uint32
		n, b, err = msgp.ReadMapHeaderBytes(b)
		if err != nil {
			return dst, b, err
		}
		dst = append(dst, '{')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			_, dst, b, err = appendKey(dst, b)
			if err != nil {
				return dst, b, err
			}
			dst = append(dst, ':')
			dst, b, err = appendValueJSON(dst, b, depth+1)
			if err != nil {
				return dst, b, err
			}
		}
		return append(dst, '}'), b, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		return appendExtJSON(dst, b)
	}
	return dst, b, errBadValue
}

func appendFloat(dst []byte, v float64, bits int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, bits)
}

// appendExtJSON writes an event time (Fluentd's type 0, msgpack's timestamp type -1) as an
// RFC 3339 string, and any other extension as {"ext":type,"data":"<base64>"}.
func appendExtJSON(dst, b []byte) ([]byte, []byte, error) {
	typ, data, rest, err := readExt(b)
	if err != nil {
		return dst, b, err
	}
	if ns, ok := extTime(typ, data); ok {
		dst = append(dst, '"')
		dst = collector.AppendTime(dst, ns)
		return append(dst, '"'), rest, nil
	}
	dst = append(dst, `{"ext":`...)
	dst = strconv.AppendInt(dst, int64(typ), 10)
	dst = append(dst, `,"data":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, data)
	return append(dst, `"}`...), rest, nil
}

// readExt splits the extension value at b into its type and data.
func readExt(b []byte) (typ int8, data, rest []byte, err error) {
	hdr, body, _, ok, err := headerSize(b)
	if err != nil || !ok {
		return 0, nil, b, msgp.ErrShortBytes
	}
	if b[0] < 0xc7 || (b[0] > 0xc9 && b[0] < 0xd4) || b[0] > 0xd8 {
		return 0, nil, b, errBadValue
	}
	end := uint64(hdr) + body
	if uint64(len(b)) < end {
		return 0, nil, b, msgp.ErrShortBytes
	}
	return int8(b[hdr-1]), b[hdr:end], b[end:], nil
}

// extTime decodes the event-time extensions to Unix nanoseconds.
func extTime(typ int8, data []byte) (int64, bool) {
	switch {
	case typ == 0 && len(data) == 8: // Fluentd EventTime: uint32 seconds, uint32 nanoseconds
		return int64(binary.BigEndian.Uint32(data))*1e9 + int64(binary.BigEndian.Uint32(data[4:])), true
	case typ == -1 && len(data) == 4: // msgpack timestamp32
		return int64(binary.BigEndian.Uint32(data)) * 1e9, true
	case typ == -1 && len(data) == 8: // timestamp64: 30-bit nanoseconds, 34-bit seconds
		v := binary.BigEndian.Uint64(data)
		return int64(v&(1<<34-1))*1e9 + int64(v>>34), true
	case typ == -1 && len(data) == 12: // timestamp96: uint32 nanoseconds, int64 seconds
		secs := int64(binary.BigEndian.Uint64(data[4:]))
		if secs >= maxSeconds || secs <= -maxSeconds {
			return 0, false
		}
		return secs*1e9 + int64(binary.BigEndian.Uint32(data)), true
	}
	return 0, false
}
