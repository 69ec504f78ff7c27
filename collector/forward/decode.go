package forward

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

// Batches cut from one large frame stay within these bounds, so the pipeline never gets a
// batch much bigger than a buffer segment wants.
const (
	maxBatchRecords = 4096
	maxBatchBytes   = 4 << 20
)

// Reasons counted in tailgate_input_errors_total.
const (
	reasonGarbage   = "garbage"
	reasonTooLarge  = "too_large"
	reasonMalformed = "malformed"
	reasonBadFrame  = "bad_frame"
	reasonTruncated = "truncated"
	reasonHandshake = "handshake"
)

// frameError is a bad frame: the connection is closed and reason counted.
type frameError struct {
	reason string
	err    error
}

func (e *frameError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

func badFrame(format string, args ...any) error {
	return &frameError{reason: reasonBadFrame, err: fmt.Errorf(format, args...)}
}

// decoder turns complete frames into batches of records. One per connection; its buffers are
// reused frame after frame, and records point into the frame and into d.fields, which stay
// untouched until flush returns (Emit copies).
type decoder struct {
	src         *collector.Source
	key         uint64 // connection key, for ids when the sender gives no chunk id
	seq         uint64
	maxUnpacked int // inflated bytes of one compressed chunk
	maxEntry    int // bytes of one inflated entry (0: maxUnpacked)
	flush       func(*collector.Batch) error

	batch  collector.Batch
	fields []byte
	tag    []byte
	chunk  []byte
	// chunkKey is the hash of the current frame's chunk id; ids are (chunkKey, entry index),
	// so a client's retry of a chunk reproduces them.
	chunkKey uint64

	gz     *gzip.Reader
	br     bytes.Reader
	unz    []byte         // inflate window
	winRes reservation    // of the window's growth past keepBuffer
	es     msgpackScanner // finds entry ends in the window
}

// Inflated entries are decoded through a window of this size; it grows only for one entry
// larger than that. A gzip bomb costs CPU, not memory.
const inflateWindow = 256 << 10

// maxChunkID bounds the chunk option: it is kept until acknowledged and echoed in the ack.
// Clients send 24 bytes (base64 of 16 random bytes).
const maxChunkID = 256

// decode emits the events of one msgpack frame through d.flush and returns the frame's chunk
// id (a slice of frame), or nil when the sender asked for no ack.
func (d *decoder) decode(frame []byte) (chunk []byte, err error) {
	d.batch.Reset()
	d.fields = d.fields[:0]
	d.chunk = nil
	n, b, err := msgp.ReadArrayHeaderBytes(frame)
	if err != nil || n < 2 || n > 4 {
		return nil, badFrame("frame is not an array of 2 to 4 elements")
	}
	tag, ok := stringValue(b)
	if !ok {
		return nil, badFrame("tag is not a string")
	}
	if b, err = msgp.Skip(b); err != nil {
		return nil, badFrame("tag: %w", err)
	}
	d.tag = tag
	body := b
	switch msgp.NextType(b) {
	case msgp.ArrayType:
		if isTimeArray(b) {
			return d.message(b, n)
		}
		// Forward: [tag, [[time, record], ...], option?]
		if b, err = msgp.Skip(b); err != nil {
			return nil, badFrame("entries: %w", err)
		}
		if err = d.option(b, n-2); err != nil {
			return nil, err
		}
		var count uint32
		count, body, _ = msgp.ReadArrayHeaderBytes(body)
		for i := uint32(0); i < count; i++ {
			if body, err = d.entry(body, uint64(i)); err != nil {
				return nil, err
			}
		}
	case msgp.StrType, msgp.BinType: // PackedForward: [tag, entries..., option?]
		payload, _ := stringValue(b)
		if b, err = msgp.Skip(b); err != nil {
			return nil, badFrame("entries: %w", err)
		}
		if err = d.option(b, n-2); err != nil {
			return nil, err
		}
		// The compressed option is only a hint: the gzip magic decides. A msgpack entry stream
		// starts with an array header, never with 0x1f.
		if len(payload) >= 2 && payload[0] == 0x1f && payload[1] == 0x8b {
			if err = d.inflateEntries(payload); err != nil {
				return nil, err
			}
			return d.finish()
		}
		for i := uint64(0); len(payload) > 0; i++ {
			if payload, err = d.entry(payload, i); err != nil {
				return nil, err
			}
		}
	default:
		return d.message(b, n)
	}
	return d.finish()
}

func (d *decoder) finish() ([]byte, error) {
	if len(d.batch.Records) > 0 {
		if err := d.flushBatch(); err != nil {
			return nil, err
		}
	}
	return d.chunk, nil
}

// message decodes Message mode, [tag, time, record, option?]; b is at the time, n is the
// frame's element count.
func (d *decoder) message(b []byte, n uint32) ([]byte, error) {
	if n < 3 {
		return nil, badFrame("message frame without a record")
	}
	t, rec, err := readEventTime(b)
	if err != nil {
		return nil, err
	}
	if b, err = msgp.Skip(rec); err != nil {
		return nil, badFrame("record: %w", err)
	}
	if err = d.option(b, n-3); err != nil {
		return nil, err
	}
	if _, err = d.record(rec, t, 0); err != nil {
		return nil, err
	}
	return d.finish()
}

// isTimeArray tells Message mode with Fluent Bit's [time, {metadata}] time from Forward mode:
// a Forward frame's array holds entries, which are arrays themselves.
func isTimeArray(b []byte) bool {
	n, rest, err := msgp.ReadArrayHeaderBytes(b)
	return err == nil && n > 0 && msgp.NextType(rest) != msgp.ArrayType
}

// option reads the option map, if present (n is 1 when it is). Only chunk matters, and it
// is at most maxChunkID bytes; size and compressed are hints that size nothing here (the frame
// is already whole, and the gzip magic decides), and unknown keys (fluent_signal, ...) are
// fine.
func (d *decoder) option(b []byte, n uint32) error {
	d.chunkKey = 0
	if n == 0 || msgp.IsNil(b) {
		return nil
	}
	if msgp.NextType(b) != msgp.MapType {
		return badFrame("option is not a map")
	}
	count, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return badFrame("option: %w", err)
	}
	for i := uint32(0); i < count; i++ {
		key, ok := stringValue(b)
		if b, err = msgp.Skip(b); err != nil {
			return badFrame("option: %w", err)
		}
		if ok && string(key) == "chunk" {
			if v, ok := stringValue(b); ok && len(v) > 0 {
				if len(v) > maxChunkID {
					return badFrame("chunk id of %d bytes, at most %d", len(v), maxChunkID)
				}
				d.chunk = v
				d.chunkKey = hash64(v)
			}
		}
		if b, err = msgp.Skip(b); err != nil {
			return badFrame("option: %w", err)
		}
	}
	return nil
}

// entry decodes one [time, record] entry; Fluent Bit's [[time, metadata], record] too.
func (d *decoder) entry(b []byte, idx uint64) ([]byte, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil || n < 2 {
		return b, badFrame("entry %d is not a [time, record] array", idx)
	}
	t, b, err := readEventTime(b)
	if err != nil {
		return b, err
	}
	if b, err = d.record(b, t, idx); err != nil {
		return b, err
	}
	for ; n > 2; n-- {
		if b, err = msgp.Skip(b); err != nil {
			return b, badFrame("entry %d: %w", idx, err)
		}
	}
	return b, nil
}

// record converts one record map and appends it to the batch.
func (d *decoder) record(b []byte, t int64, idx uint64) ([]byte, error) {
	start := len(d.fields)
	var msg []byte
	var err error
	d.fields, b, msg, err = appendRecordJSON(d.fields, b)
	if err != nil {
		return b, badFrame("record %d: %w", idx, err)
	}
	id := collector.MakeID(d.key, d.seq)
	if d.chunk != nil {
		id = collector.MakeID(d.chunkKey, idx)
	}
	d.seq++
	d.batch.Records = append(d.batch.Records, collector.Record{
		Source:  d.src,
		Time:    t,
		ID:      id,
		Stream:  collector.StreamApp,
		Message: msg,
		Tag:     d.tag,
		Fields:  d.fields[start:len(d.fields):len(d.fields)],
	})
	if len(d.batch.Records) >= maxBatchRecords || len(d.fields) >= maxBatchBytes {
		return b, d.flushBatch()
	}
	return b, nil
}

// trim drops buffers a big frame grew, once the frame is done.
func (d *decoder) trim() {
	if cap(d.fields) > keepBuffer {
		d.fields = nil
	}
	if cap(d.unz) > keepBuffer {
		d.unz = nil
		d.winRes.fit(0)
	}
	// A batch holds up to maxBatchRecords: keep a slice that size, or every big chunk
	// would rebuild it.
	if cap(d.batch.Records) > 2*maxBatchRecords {
		d.batch.Records = nil
	}
}

func (d *decoder) flushBatch() error {
	err := d.flush(&d.batch)
	d.batch.Reset()
	d.fields = d.fields[:0]
	return err
}

// readEventTime reads an entry's time: a plain time, or Fluent Bit's [time, {metadata}].
func readEventTime(b []byte) (int64, []byte, error) {
	if msgp.NextType(b) != msgp.ArrayType {
		return readTime(b)
	}
	m, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil || m < 1 {
		return 0, b, badFrame("empty time array")
	}
	t, b, err := readTime(b)
	if err != nil {
		return 0, b, err
	}
	for ; m > 1; m-- { // metadata
		if b, err = msgp.Skip(b); err != nil {
			return 0, b, badFrame("time metadata: %w", err)
		}
	}
	return t, b, nil
}

// readTime reads an event time: integer seconds, float seconds, or EventTime (ext type 0).
func readTime(b []byte) (int64, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.IntType:
		v, rest, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return 0, b, badFrame("time: %w", err)
		}
		return secondsToNanos(v), rest, nil
	case msgp.UintType:
		v, rest, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return 0, b, badFrame("time: %w", err)
		}
		return secondsToNanos(int64(min(v, maxSeconds))), rest, nil
	case msgp.Float32Type, msgp.Float64Type:
		v, rest, err := msgp.ReadFloat64Bytes(b)
		if err != nil {
			return 0, b, badFrame("time: %w", err)
		}
		return floatSecondsToNanos(v), rest, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		typ, data, rest, err := readExt(b)
		if err != nil {
			return 0, b, badFrame("time: %w", err)
		}
		if t, ok := extTime(typ, data); ok {
			return t, rest, nil
		}
		return 0, b, badFrame("time: extension type %d of %d bytes", typ, len(data))
	}
	return 0, b, badFrame("time is not a number or EventTime")
}

const maxSeconds = math.MaxInt64 / 1_000_000_000

// secondsToNanos converts integer seconds to nanoseconds, saturating instead of overflowing.
func secondsToNanos(s int64) int64 {
	return min(max(s, -maxSeconds), maxSeconds) * 1e9
}

// floatSecondsToNanos converts float seconds to nanoseconds; NaN is the epoch. Seconds and
// fraction are converted apart: f*1e9 would lose the nanoseconds to float64 rounding.
func floatSecondsToNanos(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= maxSeconds:
		return math.MaxInt64
	case f <= -maxSeconds:
		return math.MinInt64
	}
	secs := math.Floor(f)
	return int64(secs)*1e9 + int64(math.Round((f-secs)*1e9))
}

// inflateEntries decodes the entries of a CompressedPackedForward payload (one or more
// concatenated gzip members) as they inflate. The window holds whole entries not yet decoded
// and at most one partial one; the records decoded from it are flushed before it is reused,
// since they point into it. More than maxUnpacked inflated bytes in all is refused (the
// entries before that point were emitted, unacknowledged: the client's resend repeats them,
// as for any frame that turns out bad half-way).
func (d *decoder) inflateEntries(payload []byte) error {
	d.br.Reset(payload)
	var err error
	if d.gz == nil {
		d.gz, err = gzip.NewReader(&d.br)
	} else {
		err = d.gz.Reset(&d.br)
	}
	if err != nil {
		return badFrame("gzip: %w", err)
	}
	maxEntry := d.maxEntry
	if maxEntry <= 0 {
		maxEntry = d.maxUnpacked
	}
	d.es.max = maxEntry
	win := d.unz[:0]
	if cap(win) < inflateWindow {
		win = make([]byte, 0, inflateWindow)
	}
	start, total := 0, 0
	var idx uint64
	scanning, eof := false, false
	for {
		for start < len(win) {
			if !scanning {
				d.es.reset()
				scanning = true
			}
			n, done, err := d.es.scan(win[start:])
			if err != nil {
				d.unz = win
				if errors.Is(err, errTooLarge) {
					return &frameError{reason: reasonTooLarge, err: fmt.Errorf("inflated entry %d: %w", idx, err)}
				}
				return badFrame("inflated entry %d: %w", idx, err)
			}
			if !done {
				break
			}
			scanning = false
			if _, err := d.entry(win[start:start+n], idx); err != nil {
				d.unz = win
				return err
			}
			start += n
			idx++
		}
		if eof {
			d.unz = win
			if start < len(win) {
				return badFrame("compressed entries end inside entry %d", idx)
			}
			return nil
		}
		if start > 0 {
			if len(d.batch.Records) > 0 {
				if err := d.flushBatch(); err != nil {
					d.unz = win
					return err
				}
			}
			win = win[:copy(win[:cap(win)], win[start:])]
			start = 0
		}
		if len(win) == cap(win) { // one entry larger than the window
			if cap(win) >= maxEntry {
				d.unz = win
				return &frameError{reason: reasonTooLarge, err: fmt.Errorf("inflated entry %d exceeds %d bytes", idx, maxEntry)}
			}
			size := min(2*cap(win), maxEntry)
			if !d.winRes.fit(size) {
				d.unz = win
				return errMemoryLimit
			}
			grown := make([]byte, len(win), size)
			copy(grown, win)
			win = grown
		}
		n, err := d.gz.Read(win[len(win):cap(win)])
		win = win[:len(win)+n]
		if total += n; total > d.maxUnpacked {
			d.unz = win
			return &frameError{reason: reasonTooLarge, err: errors.New("inflated chunk exceeds its limit")}
		}
		switch {
		case err == io.EOF:
			eof = true
		case err != nil:
			d.unz = win
			return badFrame("gzip: %w", err)
		}
	}
}

// hash64 is FNV-1a: a stable key for a chunk id, the same in every process.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
