package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Frame payloads are what the collector stores in the buffer (which sees opaque bytes).
// A data frame holds one batch: the sources its records reference, the input positions it
// reached, and the records. A checkpoint frame holds only positions (the full state).
//
//	frame   = version:u8 nsources:uvarint source* nstate:uvarint state* nrecords:uvarint record*
//	source  = key:u64le kubever:uvarint input:str haskube:u8 [ns pod uid container node:str nlabels:uvarint (k v:str)*]
//	state   = input:str key:str present:u8 [value:str]
//	record  = src:uvarint time:i64le id:16 stream:u8 flags:u8 message:str tag:str fields:str
//	str     = len:uvarint bytes
const frameVersion = 1

// maxFrameItems bounds counts read from a frame so a corrupt count cannot allocate wildly.
const maxFrameItems = 1 << 24

var errFrame = errors.New("malformed frame")

// frameEncoder builds frame payloads into a reused buffer.
type frameEncoder struct {
	buf     []byte
	srcIdx  map[*Source]int
	sources []*Source
}

// encodeBatch encodes one data frame for input's batch, leaving out records marked unrouted;
// n is the number of records kept. The returned slice is valid until the next call.
func (e *frameEncoder) encodeBatch(input string, b *Batch, n int) []byte {
	if e.srcIdx == nil {
		e.srcIdx = make(map[*Source]int)
	}
	clear(e.srcIdx)
	e.sources = e.sources[:0]
	for i := range b.Records {
		if b.Records[i].Flags&flagUnrouted != 0 {
			continue
		}
		s := b.Records[i].Source
		if _, ok := e.srcIdx[s]; !ok {
			e.srcIdx[s] = len(e.sources)
			e.sources = append(e.sources, s)
		}
	}
	buf := append(e.buf[:0], frameVersion)
	buf = binary.AppendUvarint(buf, uint64(len(e.sources)))
	for _, s := range e.sources {
		buf = appendSource(buf, s)
	}
	buf = binary.AppendUvarint(buf, uint64(len(b.State)))
	for _, st := range b.State {
		buf = appendState(buf, input, st.Key, st.Value)
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for i := range b.Records {
		r := &b.Records[i]
		if r.Flags&flagUnrouted != 0 {
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(e.srcIdx[r.Source]))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(r.Time))
		buf = append(buf, r.ID[:]...)
		buf = append(buf, byte(r.Stream), r.Flags)
		buf = appendBytes(buf, r.Message)
		buf = appendBytes(buf, r.Tag)
		buf = appendBytes(buf, r.Fields)
	}
	e.buf = buf
	return buf
}

// encodeCheckpoint encodes the full input state as a checkpoint frame payload.
func encodeCheckpoint(dst []byte, state map[string]map[string][]byte) []byte {
	dst = append(dst, frameVersion)
	dst = binary.AppendUvarint(dst, 0)
	n := 0
	for _, kv := range state {
		n += len(kv)
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for input, kv := range state {
		for k, v := range kv {
			dst = appendState(dst, input, k, v)
		}
	}
	return binary.AppendUvarint(dst, 0)
}

func appendSource(buf []byte, s *Source) []byte {
	if s == nil {
		s = &Source{}
	}
	v := s.view()
	buf = binary.LittleEndian.AppendUint64(buf, s.Key)
	buf = binary.AppendUvarint(buf, uint64(v.version))
	buf = appendString(buf, s.Input)
	if v.kube == nil {
		return append(buf, 0)
	}
	k := v.kube
	buf = append(buf, 1)
	for _, f := range [...]string{k.Namespace, k.Pod, k.PodUID, k.Container, k.Node} {
		buf = appendString(buf, f)
	}
	buf = binary.AppendUvarint(buf, uint64(len(k.Labels)))
	for key, val := range k.Labels {
		buf = appendString(buf, key)
		buf = appendString(buf, val)
	}
	return buf
}

func appendState(buf []byte, input, key string, value []byte) []byte {
	buf = appendString(buf, input)
	buf = appendString(buf, key)
	if value == nil {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	return appendBytes(buf, value)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// sourceKey identifies one published version of a source across frames.
type sourceKey struct {
	key     uint64
	version uint32
	input   string
}

// frameDecoder decodes frame payloads. It keeps the sources it has seen, so records of the same
// source in later frames point at the same *Source and metadata is decoded once per version.
type frameDecoder struct {
	sources map[sourceKey]*Source
	table   []*Source
}

// maxCachedSources bounds the decoder's source cache; it is dropped whole when exceeded.
const maxCachedSources = 1 << 16

// decodedFrame is one decoded payload. Records point into the payload bytes.
type decodedFrame struct {
	Records []Record
	State   []stateItem
}

type stateItem struct {
	Input, Key string
	Value      []byte // nil: delete
}

type frameReader struct {
	b   []byte
	off int
	err error
}

func (r *frameReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errFrame
		return 0
	}
	r.off += n
	return v
}

func (r *frameReader) count() int {
	v := r.uvarint()
	if v > maxFrameItems || v > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *frameReader) fail() {
	if r.err == nil {
		r.err = errFrame
	}
}

func (r *frameReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail()
		return nil
	}
	b := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b
}

func (r *frameReader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.fail()
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *frameReader) u8() byte {
	b := r.fixed(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// decode parses payload. Records borrow payload's bytes; only states copy their values.
func (d *frameDecoder) decode(payload []byte, dst *decodedFrame) error {
	if d.sources == nil || len(d.sources) > maxCachedSources {
		d.sources = make(map[sourceKey]*Source)
	}
	dst.Records = dst.Records[:0]
	dst.State = dst.State[:0]
	r := &frameReader{b: payload}
	if v := r.u8(); r.err == nil && v != frameVersion {
		return fmt.Errorf("frame version %d: %w", v, errFrame)
	}
	ns := r.count()
	d.table = d.table[:0]
	for i := 0; i < ns && r.err == nil; i++ {
		d.table = append(d.table, d.decodeSource(r))
	}
	nst := r.count()
	for i := 0; i < nst && r.err == nil; i++ {
		input := string(r.bytes())
		key := string(r.bytes())
		var val []byte
		if r.u8() == 1 {
			val = append([]byte{}, r.bytes()...)
		}
		dst.State = append(dst.State, stateItem{Input: input, Key: key, Value: val})
	}
	nr := r.count()
	if cap(dst.Records) < nr {
		dst.Records = make([]Record, 0, nr)
	}
	for i := 0; i < nr && r.err == nil; i++ {
		idx := r.uvarint()
		if idx >= uint64(len(d.table)) {
			r.fail()
			break
		}
		var rec Record
		rec.Source = d.table[idx]
		if t := r.fixed(8); t != nil {
			rec.Time = int64(binary.LittleEndian.Uint64(t))
		}
		copy(rec.ID[:], r.fixed(16))
		rec.Stream = Stream(r.u8())
		rec.Flags = r.u8()
		rec.Message = r.bytes()
		rec.Tag = r.bytes()
		rec.Fields = r.bytes()
		dst.Records = append(dst.Records, rec)
	}
	if r.err == nil && r.off != len(payload) {
		r.fail()
	}
	if r.err != nil {
		return fmt.Errorf("decode frame at byte %d: %w", r.off, r.err)
	}
	return nil
}

func (d *frameDecoder) decodeSource(r *frameReader) *Source {
	kb := r.fixed(8)
	if kb == nil {
		return nil
	}
	ver := r.uvarint()
	if ver > math.MaxUint32 {
		r.fail()
		return nil
	}
	input := r.bytes()
	hasKube := r.u8()
	sk := sourceKey{key: binary.LittleEndian.Uint64(kb), version: uint32(ver)}
	// Look up without allocating the input string when the source is known.
	var cached *Source
	if s, ok := d.sources[sourceKey{key: sk.key, version: sk.version, input: string(input)}]; ok {
		cached = s
	}
	var k *Kube
	if hasKube == 1 {
		fields := [5]string{}
		for i := range fields {
			b := r.bytes()
			if cached == nil {
				fields[i] = string(b)
			}
		}
		nl := r.count()
		var labels map[string]string
		if cached == nil && nl > 0 {
			labels = make(map[string]string, nl)
		}
		for i := 0; i < nl && r.err == nil; i++ {
			key, val := r.bytes(), r.bytes()
			if labels != nil {
				labels[string(key)] = string(val)
			}
		}
		if cached == nil {
			k = &Kube{Namespace: fields[0], Pod: fields[1], PodUID: fields[2], Container: fields[3], Node: fields[4], Labels: labels}
		}
	} else if hasKube != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil
	}
	if cached != nil {
		return cached
	}
	sk.input = string(input)
	s := &Source{Key: sk.key, Input: sk.input}
	s.SetKube(k)
	d.sources[sk] = s
	return s
}
