package collector

import "sync"

// batchMem holds copies of a keyed batch's records: the Record structs in chunks whose
// addresses never move, and the bytes they point to (message, tag, fields) in an arena of
// chunks. A keyed sink (a CloudWatch stream, a Cloud Logging log) has many batches open, each
// taking a few records of every frame; with pointers, one frame stays in memory until the last
// of those batches is acknowledged, and so do all the frames read meanwhile. With copies the
// frame is freed as soon as it is read, and memory is what the open and in-flight batches hold
// (bounded by MaxOpenBytes and MaxInFlight), at the cost of one copy of each record's bytes.
// Chunks go back to the runner's pools when the batch is done, so steady state allocates
// no chunks.
type batchMem struct {
	pools *memPools
	recs  [][]Record
	ri    int // chunk of recs being filled
	bufs  [][]byte
	bi    int // chunk of bufs being filled
}

// memPools are a runner's spare chunks, shared by its batches.
type memPools struct {
	recs sync.Pool // *[]Record, len 0, cap memRecordChunk
	bufs sync.Pool // *[]byte, len 0, cap memByteChunk
}

const (
	memRecordChunk = 256      // Records per chunk
	memByteChunk   = 64 << 10 // arena chunk size
	// memLargeBytes: a value at least this long gets its own allocation instead of an arena
	// chunk, so one big message does not waste the rest of a chunk.
	memLargeBytes = memByteChunk / 4
)

// copy returns a copy of r, and of the bytes it points to, owned by m.
func (m *batchMem) copy(r *Record) *Record {
	for m.ri < len(m.recs) && len(m.recs[m.ri]) == cap(m.recs[m.ri]) {
		m.ri++
	}
	if m.ri == len(m.recs) {
		m.recs = append(m.recs, m.recordChunk())
	}
	chunk := append(m.recs[m.ri], *r)
	m.recs[m.ri] = chunk
	c := &chunk[len(chunk)-1]
	c.Message = m.bytes(r.Message)
	c.Tag = m.bytes(r.Tag)
	c.Fields = m.bytes(r.Fields)
	return c
}

// bytes copies b into the arena; nil stays nil (a record without fields).
func (m *batchMem) bytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	if len(b) >= memLargeBytes {
		return append(make([]byte, 0, len(b)), b...)
	}
	for m.bi < len(m.bufs) && cap(m.bufs[m.bi])-len(m.bufs[m.bi]) < len(b) {
		m.bi++
	}
	if m.bi == len(m.bufs) {
		m.bufs = append(m.bufs, m.byteChunk())
	}
	buf := m.bufs[m.bi]
	n := len(buf)
	buf = append(buf, b...)
	m.bufs[m.bi] = buf
	return buf[n:len(buf):len(buf)] // capped: an append by the sink cannot run into the next copy
}

func (m *batchMem) recordChunk() []Record {
	if p, _ := m.pools.recs.Get().(*[]Record); p != nil {
		return *p
	}
	return make([]Record, 0, memRecordChunk)
}

func (m *batchMem) byteChunk() []byte {
	if p, _ := m.pools.bufs.Get().(*[]byte); p != nil {
		return *p
	}
	return make([]byte, 0, memByteChunk)
}

// release gives m's chunks back to the pools, emptied of what they pointed to (sources). m is
// not used again.
func (m *batchMem) release() {
	for _, chunk := range m.recs {
		clear(chunk)
		chunk = chunk[:0]
		m.pools.recs.Put(&chunk)
	}
	for _, buf := range m.bufs {
		buf = buf[:0]
		m.pools.bufs.Put(&buf)
	}
	*m = batchMem{}
}
