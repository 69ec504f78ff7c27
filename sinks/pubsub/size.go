package pubsub

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// recordBytes is collector.Limits.RecordBytes: the size of r's message as the service counts
// it (the PubsubMessage: data, attributes, ordering key), for the pipeline to enforce
// max_message_bytes before Send.
//
// It runs for every record, so it starts with an upper bound that costs a few additions:
// JSON escaping writes at most 6 bytes per byte of the message and tag, and the attributes of
// both record flags and the longest ordering key are counted whether present or not. Only a
// bound over the limit is looked at more closely: if even a lower bound is over (escaping only
// grows a string) that is the answer, and between the two the message and tag are encoded to
// measure them. So a record within the limit is never reported over it, and a record over it
// never reported within.
func (s *Sink) recordBytes(r *collector.Record) int {
	limit := s.opts.MaxMessageBytes
	if n := s.upperBytes(r); n <= limit {
		return n
	}
	if n := s.lowerBytes(r); n > limit {
		return n
	}
	return s.exactBytes(r)
}

// upperBytes bounds r's message size from above.
func (s *Sink) upperBytes(r *collector.Record) int {
	data, attrs := s.sizes.fixed(r)
	key := 0
	if s.keys != nil {
		key = protowire.SizeTag(5) + protowire.SizeBytes(maxOrderingKeyBytes)
	}
	return messageBytes(data+6*(len(r.Message)+len(r.Tag)), attrs, key)
}

// lowerBytes bounds exactBytes from below: escaping never makes a string shorter.
func (s *Sink) lowerBytes(r *collector.Record) int {
	data, attrs := s.sizes.fixed(r)
	return messageBytes(data+len(r.Message)+len(r.Tag), attrs, 0)
}

// exactBytes is r's message size as Send builds it, but for the attributes of the flags it
// does not have, which are counted anyway (the pipeline measures a part before flagging it).
func (s *Sink) exactBytes(r *collector.Record) int {
	data, attrs := s.sizes.fixed(r)
	key := 0
	if s.keys != nil {
		if k := s.keys.key(r); k != "" {
			key = protowire.SizeTag(5) + protowire.SizeBytes(len(k))
		}
	}
	data += quotedLen(r.Message, quoteChunk) - len(`""`) + quotedLen(r.Tag, quoteChunk) - len(`""`)
	return messageBytes(data, attrs, key)
}

// messageBytes is the encoded size of a PubsubMessage with data of n bytes, attributes of
// attrs bytes and an ordering key field of key bytes.
func messageBytes(data, attrs, key int) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(data) + attrs + key
}

// dataBound is an upper bound of r's envelope size, for sizing the arena: the 6x bound, or
// for a big record (where 6x would reserve megabytes for nothing) its size, measured.
func (s *Sink) dataBound(r *collector.Record) int {
	data, _ := s.sizes.fixed(r)
	if n := data + 6*(len(r.Message)+len(r.Tag)); n <= arenaChunk {
		return n
	}
	return data + quotedLen(r.Message, quoteChunk) + quotedLen(r.Tag, quoteChunk) - 2*len(`""`)
}

// quoteChunk is how much of a string quotedLen encodes at a time: its scratch stays small
// whatever the string's size.
const quoteChunk = 64 << 10

// quotedLen is len(collector.AppendJSONString(nil, s)), measured by encoding s in pieces of
// about chunk bytes (at least utf8.UTFMax) into a pooled scratch buffer. A piece ends where
// a character starts, so each piece encodes exactly as it does within s (invalid bytes become
// U+FFFD one by one either way).
func quotedLen(s []byte, chunk int) int {
	bp := quoteScratch.Get().(*[]byte)
	defer quoteScratch.Put(bp)
	chunk = max(chunk, utf8.UTFMax)
	n := len(`""`)
	for len(s) > 0 {
		k := min(len(s), chunk)
		// Back off to the start of a character, unless none of the 3 bytes before k starts one
		// (then no valid character spans k).
		for j := k; j < len(s) && j > k-utf8.UTFMax; j-- {
			if utf8.RuneStart(s[j]) {
				k = j
				break
			}
		}
		*bp = collector.AppendJSONString((*bp)[:0], s[:k])
		n += len(*bp) - len(`""`)
		s = s[k:]
	}
	return n
}

var quoteScratch = sync.Pool{New: func() any { b := make([]byte, 0, 2*quoteChunk+16); return &b }}

// sourceSize is what a source contributes to the size of each of its records' messages.
type sourceSize struct {
	src  *collector.Source
	kube *collector.Kube // the metadata it was measured with (a Source may get new metadata)
	// data is the envelope of a record of the source with an empty message, tag and fields
	// and no stream name; attrs is every attribute but the stream's, with both flags' reserved.
	data, attrs int
}

// sizeCache measures each source once per metadata version. Records come in runs of one
// source, so the last answer is kept apart where a load is all it costs to check.
type sizeCache struct {
	last atomic.Pointer[sourceSize]

	mu      sync.Mutex
	sources map[*collector.Source]*sourceSize
}

// maxSizeCache bounds the cache; it is dropped and refilled when sources churn past it.
const maxSizeCache = 4096

// fixed returns the exact size of r's envelope with an empty message and tag, and of its
// attributes with both flags' reserved.
func (c *sizeCache) fixed(r *collector.Record) (data, attrs int) {
	ss := c.get(r.Source)
	stream := r.Stream.String()
	data = ss.data + len(stream)
	if len(r.Fields) > 0 {
		data += len(r.Fields) - len("{}")
	}
	return data, ss.attrs + attrSize(attrStream, stream)
}

func (c *sizeCache) get(src *collector.Source) *sourceSize {
	var kube *collector.Kube
	if src != nil {
		kube = src.Kube()
	}
	if ss := c.last.Load(); ss != nil && ss.src == src && ss.kube == kube {
		return ss
	}
	c.mu.Lock()
	ss := c.sources[src]
	if ss == nil || ss.kube != kube {
		ss = measureSource(src, kube)
		if c.sources == nil || len(c.sources) >= maxSizeCache {
			c.sources = make(map[*collector.Source]*sourceSize)
		}
		c.sources[src] = ss
	}
	c.mu.Unlock()
	c.last.Store(ss)
	return ss
}

// maxPartAttr and maxPartsAttr are the longest part and parts attributes: part numbers are
// below 2^16.
const (
	maxPartAttr  = "65535"
	maxPartsAttr = "65536"
)

func measureSource(src *collector.Source, kube *collector.Kube) *sourceSize {
	ss := &sourceSize{src: src, kube: kube}
	r := collector.Record{Stream: collector.StreamUnknown}
	input := ""
	if src != nil {
		input = src.Input
		// A source of its own, so the envelope is measured with exactly this metadata.
		r.Source = collector.NewSource(src.Key, input, kube)
	}
	ss.data = len(r.AppendJSON(nil)) - len(collector.StreamUnknown.String())
	k := kube
	if k == nil {
		k = &emptyKube
	}
	ss.attrs = attrSize(attrNamespace, validUTF8(k.Namespace)) +
		attrSize(attrPod, validUTF8(k.Pod)) +
		attrSize(attrContainer, validUTF8(k.Container)) +
		attrSize(attrSource, validUTF8(input)) +
		attrSize(attrID, "0123456789abcdef0123456789abcdef") +
		attrSize(attrTruncated, "true") +
		attrSize(attrPart, maxPartAttr) +
		attrSize(attrParts, maxPartsAttr)
	return ss
}
