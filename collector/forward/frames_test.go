package forward

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// Frame builders from the forward protocol v1 spec, with msgp's Append functions.

// eventTime appends an EventTime (ext type 0: uint32 BE seconds, uint32 BE nanoseconds).
func eventTime(dst []byte, t time.Time) []byte {
	var data [8]byte
	binary.BigEndian.PutUint32(data[:4], uint32(t.Unix()))
	binary.BigEndian.PutUint32(data[4:], uint32(t.Nanosecond()))
	dst = append(dst, 0xd7, 0x00)
	return append(dst, data[:]...)
}

// record appends a map of string keys; values are string, int, []byte, float64, bool or nil.
func record(dst []byte, kv ...any) []byte {
	dst = msgp.AppendMapHeader(dst, uint32(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		dst = msgp.AppendString(dst, kv[i].(string))
		var err error
		dst, err = msgp.AppendIntf(dst, kv[i+1])
		if err != nil {
			panic(err)
		}
	}
	return dst
}

// option appends the option map; chunk "" leaves it out.
func option(dst []byte, chunk string, extra ...any) []byte {
	var kv []any
	if chunk != "" {
		kv = append(kv, "chunk", chunk)
	}
	kv = append(kv, extra...)
	return record(dst, kv...)
}

// messageFrame is [tag, time, record, option].
func messageFrame(tag string, t time.Time, rec []byte, opt []byte) []byte {
	n := uint32(3)
	if opt != nil {
		n = 4
	}
	b := msgp.AppendArrayHeader(nil, n)
	b = msgp.AppendString(b, tag)
	b = eventTime(b, t)
	b = append(b, rec...)
	return append(b, opt...)
}

// entry is [time, record]; fluentBit makes it [[time, {metadata}], record].
func entry(t time.Time, rec []byte, fluentBit bool) []byte {
	b := msgp.AppendArrayHeader(nil, 2)
	if fluentBit {
		b = msgp.AppendArrayHeader(b, 2)
		b = eventTime(b, t)
		b = record(b, "otlp", "x")
	} else {
		b = eventTime(b, t)
	}
	return append(b, rec...)
}

// forwardFrame is [tag, [entries...], option].
func forwardFrame(tag string, entries [][]byte, opt []byte) []byte {
	b := msgp.AppendArrayHeader(nil, frameLen(opt))
	b = msgp.AppendString(b, tag)
	b = msgp.AppendArrayHeader(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e...)
	}
	return append(b, opt...)
}

// packedFrame is [tag, bin(entries...), option]; gzipMembers > 0 compresses the entries into
// that many concatenated gzip members.
func packedFrame(tag string, entries [][]byte, opt []byte, gzipMembers int) []byte {
	payload := bytes.Join(entries, nil)
	if gzipMembers > 0 {
		var buf bytes.Buffer
		per := (len(entries) + gzipMembers - 1) / gzipMembers
		for i := 0; i < len(entries); i += per {
			zw := gzip.NewWriter(&buf)
			zw.Write(bytes.Join(entries[i:min(i+per, len(entries))], nil))
			zw.Close()
		}
		payload = buf.Bytes()
	}
	b := msgp.AppendArrayHeader(nil, frameLen(opt))
	b = msgp.AppendString(b, tag)
	b = msgp.AppendBytes(b, payload)
	return append(b, opt...)
}

func frameLen(opt []byte) uint32 {
	if opt == nil {
		return 2
	}
	return 3
}

// timestamp96 appends the msgpack timestamp extension (type -1) in its 12-byte form.
func timestamp96(dst []byte, t time.Time) []byte {
	dst = append(dst, 0xc7, 12, 0xff)
	dst = binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
	return binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
}

// fluentBitMessage is Message mode with the time as [EventTime, {metadata}].
func fluentBitMessage(tag string, t time.Time, rec []byte, opt []byte) []byte {
	b := msgp.AppendArrayHeader(nil, 4)
	b = msgp.AppendString(b, tag)
	b = msgp.AppendArrayHeader(b, 2)
	b = eventTime(b, t)
	b = msgp.AppendMapHeader(b, 0)
	b = append(b, rec...)
	return append(b, opt...)
}
