package main

import (
	"bytes"

	"github.com/tinylib/msgp/msgp"
)

// record is one bench event: {"message": pad, "client": c, "seq": n}. It marshals itself, so
// fluent-logger-golang skips its reflection path and the clients spend little of the 2 cores
// the agent needs.
type record struct {
	client int
	seq    int64
	pad    []byte
}

// MarshalMsg implements msgp.Marshaler.
func (r *record) MarshalMsg(b []byte) ([]byte, error) {
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "message")
	b = msgp.AppendStringFromBytes(b, r.pad)
	b = msgp.AppendString(b, "client")
	b = msgp.AppendInt(b, r.client)
	b = msgp.AppendString(b, "seq")
	return msgp.AppendInt64(b, r.seq), nil
}

// newRecord returns a record whose msgpack map is about size bytes (with a large seq).
func newRecord(client, size int) *record {
	r := &record{client: client, seq: 1 << 40}
	base, _ := r.MarshalMsg(nil)
	n := max(size-len(base)-2, 1) // a str8 header takes 2 bytes
	r.pad = bytes.Repeat([]byte("x"), n)
	copy(r.pad, "bench record ")
	return r
}

// size is the msgpack size of the record map.
func (r *record) size() int {
	b, _ := r.MarshalMsg(nil)
	return len(b)
}
