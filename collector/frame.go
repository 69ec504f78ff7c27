package collector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Frame payloads are what the collector stores in the buffer (which sees opaque bytes).
// A data frame holds one batch: the sinks its route masks refer to, the sources its records
// reference, the input positions it reached, and the records, grouped in sections by route
// mask so a sink's reader skips what is not its own without decoding it. A checkpoint frame
// holds only positions (the full state).
//
//	frame   = version:u8 nsinks:uvarint sink:str* nsources:uvarint source* nstate:uvarint state*
//	          nsections:uvarint section*
//	section = mask:uvarint nrecords:uvarint nbytes:u32le record*   (bit i of mask = sinks[i])
//	source  = key:u64le kubever:uvarint input:str haskube:u8 [ns pod uid container node workload
//	          workload_kind image:str nlabels:uvarint (k v:str)* nannotations:uvarint (k v:str)*]
//	state   = input:str key:str present:u8 [value:str]
//	record  = src:uvarint time:i64le id:16 stream:u8 flags:u8 message:str tag:str fields:str
//	str     = len:uvarint bytes
//
// Version 1 frames (written before routes were recorded) have no sink table and no sections
// (nrecords:uvarint record* after the states), and sources without the workload fields; they
// still decode, and their records are routed by the reader as before.
const (
	frameVersion1 = 1
	frameVersion  = 2
)

// maxFrameItems bounds counts read from a frame so a corrupt count cannot allocate wildly.
const maxFrameItems = 1 << 24

var errFrame = errors.New("malformed frame")

// frameEncoder builds frame payloads into a reused buffer.
type frameEncoder struct {
	buf     []byte
	srcIdx  map[*Source]int
	sources []*Source
	// masks[i] is the route mask of the batch's record i (0: unrouted, left out), filled by
	// the emitter before encodeBatch.
	masks    []uint64
	sections []uint64
}

// allSinks is the mask of frames that are not routed (dead letters): every reader takes them.
const allSinks = ^uint64(0)

// encodeBatch encodes one data frame for input's batch. sinks names the bits of the route
// masks in e.masks (one per record; nil masks means every record goes to every sink); records
// with mask 0 are left out. The returned slice is valid until the next call.
func (e *frameEncoder) encodeBatch(input string, sinks []string, b *Batch) []byte {
	if e.srcIdx == nil {
		e.srcIdx = make(map[*Source]int)
	}
	clear(e.srcIdx)
	e.sources = e.sources[:0]
	e.sections = e.sections[:0]
	for i := range b.Records {
		m := e.mask(i)
		if m == 0 {
			continue
		}
		if !slices.Contains(e.sections, m) {
			e.sections = append(e.sections, m)
		}
		s := b.Records[i].Source
		if _, ok := e.srcIdx[s]; !ok {
			e.srcIdx[s] = len(e.sources)
			e.sources = append(e.sources, s)
		}
	}
	buf := append(e.buf[:0], frameVersion)
	buf = binary.AppendUvarint(buf, uint64(len(sinks)))
	for _, name := range sinks {
		buf = appendString(buf, name)
	}
	buf = binary.AppendUvarint(buf, uint64(len(e.sources)))
	for _, s := range e.sources {
		buf = appendSource(buf, s)
	}
	buf = binary.AppendUvarint(buf, uint64(len(b.State)))
	for _, st := range b.State {
		buf = appendState(buf, input, st.Key, st.Value)
	}
	buf = binary.AppendUvarint(buf, uint64(len(e.sections)))
	for _, m := range e.sections {
		buf = binary.AppendUvarint(buf, m)
		n := 0
		for i := range b.Records {
			if e.mask(i) == m {
				n++
			}
		}
		buf = binary.AppendUvarint(buf, uint64(n))
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		for i := range b.Records {
			if e.mask(i) != m {
				continue
			}
			r := &b.Records[i]
			buf = binary.AppendUvarint(buf, uint64(e.srcIdx[r.Source]))
			buf = binary.LittleEndian.AppendUint64(buf, uint64(r.Time))
			buf = append(buf, r.ID[:]...)
			buf = append(buf, byte(r.Stream), r.Flags)
			buf = appendBytes(buf, r.Message)
			buf = appendBytes(buf, r.Tag)
			buf = appendBytes(buf, r.Fields)
		}
		binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	e.buf = buf
	return buf
}

func (e *frameEncoder) mask(i int) uint64 {
	if e.masks == nil {
		return allSinks
	}
	return e.masks[i]
}

// encodeCheckpoint encodes the full input state as a checkpoint frame payload.
func encodeCheckpoint(dst []byte, state map[string]map[string][]byte) []byte {
	dst = append(dst, frameVersion)
	dst = binary.AppendUvarint(dst, 0) // sinks
	dst = binary.AppendUvarint(dst, 0) // sources
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
	for _, f := range [...]string{k.Namespace, k.Pod, k.PodUID, k.Container, k.Node, k.Workload, k.WorkloadKind, k.Image} {
		buf = appendString(buf, f)
	}
	buf = appendStringMap(buf, k.Labels)
	return appendStringMap(buf, k.Annotations)
}

func appendStringMap(buf []byte, m map[string]string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for key, val := range m {
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
	// sink, when set, decodes only the sections routed to that sink (a sink's reader); ""
	// decodes every record.
	sink string
	// stateOnly skips every record (recovery reads positions only).
	stateOnly bool

	sources map[sourceKey]*Source
	table   []*Source
	// The previous frame's raw sink table and this sink's bit in it: frames of one run share
	// the table, so the name lookup happens once.
	lastSinks []byte
	lastBit   uint64
}

// maxCachedSources bounds the decoder's source cache; it is dropped whole when exceeded.
const maxCachedSources = 1 << 16

// decodedFrame is one decoded payload. Records point into the payload bytes.
type decodedFrame struct {
	Records []Record
	State   []stateItem
	// Routed is true when the records were chosen by the route masks written at append time;
	// false (version 1 frames) means every record was decoded and the reader routes them.
	Routed bool
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
	dst.Routed = false
	r := &frameReader{b: payload}
	version := r.u8()
	if r.err == nil && version != frameVersion && version != frameVersion1 {
		return fmt.Errorf("frame version %d: %w", version, errFrame)
	}
	bit := allSinks
	if version >= frameVersion {
		bit = d.sinkBit(r)
		dst.Routed = d.sink != ""
	}
	ns := r.count()
	d.table = d.table[:0]
	for i := 0; i < ns && r.err == nil; i++ {
		d.table = append(d.table, d.decodeSource(r, version))
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
	if version == frameVersion1 {
		d.decodeRecords(r, r.count(), dst)
	} else {
		nsec := r.count()
		for i := 0; i < nsec && r.err == nil; i++ {
			mask := r.uvarint()
			n := r.count()
			size := r.fixed(4)
			if size == nil {
				break
			}
			end := r.off + int(binary.LittleEndian.Uint32(size))
			if end > len(r.b) || end < r.off {
				r.fail()
				break
			}
			if d.stateOnly || mask&bit == 0 {
				r.off = end
				continue
			}
			d.decodeRecords(r, n, dst)
			if r.err == nil && r.off != end {
				r.fail()
			}
		}
	}
	if r.err == nil && r.off != len(payload) {
		r.fail()
	}
	if r.err != nil {
		return fmt.Errorf("decode frame at byte %d: %w", r.off, r.err)
	}
	return nil
}

// sinkBit reads the frame's sink table and returns the mask bit of d.sink in it (allSinks
// when the decoder takes every record, 0 when the frame routes nothing to d.sink).
func (d *frameDecoder) sinkBit(r *frameReader) uint64 {
	start := r.off
	n := r.count()
	if n > 64 {
		r.fail()
		return 0
	}
	names := r.off
	for i := 0; i < n && r.err == nil; i++ {
		r.bytes()
	}
	if r.err != nil {
		return 0
	}
	if d.sink == "" {
		return allSinks
	}
	raw := r.b[start:r.off]
	if bytes.Equal(raw, d.lastSinks) {
		return d.lastBit
	}
	d.lastSinks = append(d.lastSinks[:0], raw...)
	d.lastBit = 0
	t := &frameReader{b: r.b, off: names}
	for i := 0; i < n; i++ {
		if string(t.bytes()) == d.sink {
			d.lastBit = 1 << i
			break
		}
	}
	return d.lastBit
}

// decodeRecords appends n records read from r to dst.
func (d *frameDecoder) decodeRecords(r *frameReader, n int, dst *decodedFrame) {
	if free := cap(dst.Records) - len(dst.Records); free < n {
		dst.Records = slices.Grow(dst.Records, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		idx := r.uvarint()
		if idx >= uint64(len(d.table)) || d.table[idx] == nil {
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
}

func (d *frameDecoder) decodeSource(r *frameReader, version byte) *Source {
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
	cached := d.sources[sourceKey{key: sk.key, version: sk.version, input: string(input)}]
	var k *Kube
	switch hasKube {
	case 0:
	case 1:
		nf := 5
		if version >= frameVersion {
			nf = 8
		}
		var fields [8]string
		for i := 0; i < nf; i++ {
			b := r.bytes()
			if cached == nil {
				fields[i] = string(b)
			}
		}
		labels := d.decodeStringMap(r, cached == nil)
		var annotations map[string]string
		if version >= frameVersion {
			annotations = d.decodeStringMap(r, cached == nil)
		}
		if cached == nil {
			k = &Kube{Namespace: fields[0], Pod: fields[1], PodUID: fields[2], Container: fields[3], Node: fields[4],
				Workload: fields[5], WorkloadKind: fields[6], Image: fields[7], Labels: labels, Annotations: annotations}
		}
	default:
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

// decodeStringMap reads a counted map of strings; with keep false it only skips it.
func (d *frameDecoder) decodeStringMap(r *frameReader, keep bool) map[string]string {
	n := r.count()
	var m map[string]string
	if keep && n > 0 {
		m = make(map[string]string, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		key, val := r.bytes(), r.bytes()
		if m != nil {
			m[string(key)] = string(val)
		}
	}
	return m
}
