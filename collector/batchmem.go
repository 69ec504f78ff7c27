package collector

// batchMem holds copies of a keyed batch's records: the Record structs in chunks whose
// addresses never move, and the bytes they point to (message, tag, fields) in an arena of
// chunks. A keyed sink (a CloudWatch stream, a Cloud Logging log) has many batches open, each
// taking a few records of every frame; with pointers, one frame stays in memory until the last
// of those batches is acknowledged, and so do all the frames read meanwhile. With copies the
// frame is freed as soon as it is read, and memory is what the open batches hold (bounded by
// MaxOpenBytes), at the cost of one copy of each record's bytes.
type batchMem struct {
	recs [][]Record
	ri   int // chunk of recs being filled
	bufs [][]byte
	bi   int // chunk of bufs being filled
}

const (
	memRecordChunk = 256      // Records per chunk
	memByteChunk   = 64 << 10 // arena chunk size
	// memLargeBytes: a value at least this long gets its own allocation instead of an arena
	// chunk, so one big message does not waste the rest of a chunk.
	memLargeBytes = memByteChunk / 4
	// memKeepRecords and memKeepBytes bound what a recycled batchMem keeps.
	memKeepRecords = 4096
	memKeepBytes   = 1 << 20
)

// copy returns a copy of r, and of the bytes it points to, owned by m.
func (m *batchMem) copy(r *Record) *Record {
	for m.ri < len(m.recs) && len(m.recs[m.ri]) == cap(m.recs[m.ri]) {
		m.ri++
	}
	if m.ri == len(m.recs) {
		m.recs = append(m.recs, make([]Record, 0, memRecordChunk))
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
		m.bufs = append(m.bufs, make([]byte, 0, memByteChunk))
	}
	buf := m.bufs[m.bi]
	n := len(buf)
	buf = append(buf, b...)
	m.bufs[m.bi] = buf
	return buf[n:len(buf):len(buf)] // capped: an append by the sink cannot run into the next copy
}

// reset empties m for another batch, dropping what it held pointers to (sources) and what it
// holds past memKeepRecords and memKeepBytes.
func (m *batchMem) reset() {
	if len(m.recs) > memKeepRecords/memRecordChunk {
		clear(m.recs[memKeepRecords/memRecordChunk:])
		m.recs = m.recs[:memKeepRecords/memRecordChunk]
	}
	for i := range m.recs {
		clear(m.recs[i])
		m.recs[i] = m.recs[i][:0]
	}
	kept := 0
	for i := range m.bufs {
		if kept >= memKeepBytes {
			clear(m.bufs[i:])
			m.bufs = m.bufs[:i]
			break
		}
		m.bufs[i] = m.bufs[i][:0]
		kept += cap(m.bufs[i])
	}
	m.ri, m.bi = 0, 0
}
