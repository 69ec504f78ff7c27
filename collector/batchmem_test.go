package collector

import (
	"bytes"
	"fmt"
	"testing"
)

func TestBatchMemCopies(t *testing.T) {
	src := NewSource(1, "in", nil)
	pools := &memPools{}
	m := batchMem{pools: pools}
	var orig []Record
	var copies []*Record
	big := bytes.Repeat([]byte("x"), memLargeBytes+1)
	for i := range 3000 { // several record chunks and arena chunks
		msg := []byte(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("y"), i%300)))
		r := Record{Source: src, Time: int64(i), ID: MakeID(1, uint64(i)), Stream: StreamStdout, Message: msg}
		switch i % 4 {
		case 1:
			r.Fields = []byte(`{"a":1}`)
			r.Tag = []byte("app.tag")
		case 2:
			r.Fields = []byte{} // present and empty: must not become nil
		case 3:
			r.Message = big
		}
		orig = append(orig, r)
		c := m.copy(&r)
		copies = append(copies, c)
		// The source's bytes are the frame's: overwrite them as a recycled frame would.
		for j := range r.Message {
			if i%4 != 3 {
				r.Message[j] = '#'
			}
		}
	}
	for i, c := range copies {
		want := orig[i]
		if i%4 != 3 {
			want.Message = []byte(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("y"), i%300)))
		}
		if c.Source != want.Source || c.Time != want.Time || c.ID != want.ID || c.Stream != want.Stream ||
			!bytes.Equal(c.Message, want.Message) || !bytes.Equal(c.Tag, want.Tag) || !bytes.Equal(c.Fields, want.Fields) {
			t.Fatalf("copy %d differs: %+v, want %+v", i, c, want)
		}
		if (c.Fields == nil) != (want.Fields == nil) || (c.Tag == nil) != (want.Tag == nil) {
			t.Fatalf("copy %d: nil-ness of fields/tag changed", i)
		}
		if cap(c.Message) != len(c.Message) {
			t.Fatalf("copy %d: message capacity %d past its length %d: an append would overwrite the next copy", i, cap(c.Message), len(c.Message))
		}
	}
	m.release()
	// The chunks went back to the pool emptied: a reused record chunk holds no record, nor its
	// source pointer.
	p, _ := pools.recs.Get().(*[]Record)
	if p == nil {
		t.Fatal("release gave no record chunk back to the pool")
	}
	if len(*p) != 0 || (*p)[:1][0].Source != nil {
		t.Fatal("a pooled record chunk kept a record (and its source pointer)")
	}
	pools.recs.Put(p)
	m = batchMem{pools: pools}
	r := Record{Message: []byte("again")}
	if c := m.copy(&r); string(c.Message) != "again" {
		t.Fatalf("copy after reset: %q", c.Message)
	}
}
