package pubsub

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// Attribute names: cheap filters for subscribers (a subscription filter such as
// attributes.namespace = "shop" needs no parsing of the data).
const (
	attrNamespace = "namespace"
	attrPod       = "pod"
	attrContainer = "container"
	attrStream    = "stream"
	attrSource    = "source"
	attrID        = "id"
	// attrTruncated is "true" on a record cut short (collector.FlagTruncated: at the input's
	// max_line_bytes, or by the pipeline at max_message_bytes): the envelope does not say.
	attrTruncated = "truncated"
	// attrPart is the part number (0, 1, ...) of one part of a record split at
	// max_message_bytes (collector.FlagPart); part i's id is the record's ID.Part(i).
	attrPart = "part"
	// attrParts is, beside part, how many parts the record was split into (absent when the
	// count is unknown: a part replayed from the dead-letter store), so a consumer knows when
	// it holds them all.
	attrParts = "parts"
)

// arenaChunk is the size of the blocks message data is encoded into: a few allocations per
// batch instead of one per record, and little waste when a batch is small.
const arenaChunk = 256 << 10

// arenaMaxChunk bounds chunk growth: a reused arena holds at most this much beyond one record.
const arenaMaxChunk = 4 << 20

// arena hands out byte slices that belong to the messages of one batch. A chunk is never
// written again until reset, so a message's data stays as it was until its request returns.
type arena struct {
	buf []byte
	enc collector.Encoder
}

// reset makes the arena's last chunk writable again, once no message refers to it. A chunk
// grown past arenaMaxChunk for a huge record is dropped rather than kept for the next batch.
func (a *arena) reset() {
	if cap(a.buf) > arenaMaxChunk {
		a.buf = nil
	}
	a.buf = a.buf[:0]
}

// encode appends r's envelope and returns it as a slice of its own, with capacity clipped so
// nothing appended to it can reach the next message. need is an upper bound of its size.
func (a *arena) encode(r *collector.Record, need int) []byte {
	if cap(a.buf)-len(a.buf) < need {
		// Chunks grow, so an arena that is reset and reused settles on one chunk that holds
		// a whole batch.
		a.buf = make([]byte, 0, max(arenaChunk, need, min(2*cap(a.buf), arenaMaxChunk)))
	}
	start := len(a.buf)
	a.buf = a.enc.AppendJSON(a.buf, r)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// kubeOf returns the record's metadata, or an empty one.
func kubeOf(r *collector.Record) *collector.Kube {
	if r.Source != nil {
		if k := r.Source.Kube(); k != nil {
			return k
		}
	}
	return &emptyKube
}

var emptyKube collector.Kube

func sourceOf(r *collector.Record) string {
	if r.Source != nil {
		return r.Source.Input
	}
	return ""
}

// fillMessage makes m (emptied, with an empty attribute map) the message of r: its envelope
// encoded into a, its attributes, and key as its ordering key.
func (s *Sink) fillMessage(m *pb.PubsubMessage, r *collector.Record, id, key string, a *arena) {
	fillAttributes(m.Attributes, r, id)
	m.Data = a.encode(r, s.dataBound(r))
	m.OrderingKey = key
}

// fillAttributes puts a message's attributes into m (which the caller has cleared). Values
// are the source's strings (no copy) except id, a slice of the batch's one id string, and a
// part number; a value that is not valid UTF-8 (proto strings must be) is repaired, which is
// the only other case that allocates a string.
func fillAttributes(m map[string]string, r *collector.Record, id string) {
	k := kubeOf(r)
	m[attrNamespace] = validUTF8(k.Namespace)
	m[attrPod] = validUTF8(k.Pod)
	m[attrContainer] = validUTF8(k.Container)
	m[attrStream] = r.Stream.String()
	m[attrSource] = validUTF8(sourceOf(r))
	m[attrID] = id
	if r.Flags&collector.FlagTruncated != 0 {
		m[attrTruncated] = "true"
	}
	if r.Flags&collector.FlagPart != 0 {
		m[attrPart] = strconv.Itoa(partNumber(r.ID))
		if r.Parts > 0 {
			m[attrParts] = strconv.FormatUint(uint64(r.Parts), 10)
		}
	}
}

// partNumber is i for the ID of part i made by collector.ID.Part: positions are below 2^48,
// and Part puts i in the 16 bits above them.
func partNumber(id collector.ID) int {
	return int(binary.BigEndian.Uint16(id[8:10]))
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// attrSize is the encoded size of one map entry (field 2 of PubsubMessage).
func attrSize(k, v string) int {
	return protowire.SizeTag(2) + protowire.SizeBytes(entrySize(k, v))
}
