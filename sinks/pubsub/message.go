package pubsub

import (
	"strings"
	"unicode/utf8"

	"cloud.google.com/go/pubsub/v2"
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
	attrTruncated = "truncated" // "true" on a record cut to fit the message limit
)

// arenaChunk is the size of the blocks message data is encoded into: a few allocations per
// batch instead of one per record, and little waste when a batch is small.
const arenaChunk = 256 << 10

// arenaMaxChunk bounds chunk growth: a reused arena holds at most this much beyond one record.
const arenaMaxChunk = 4 << 20

// arena hands out byte slices that belong to the messages of one batch. A chunk is never
// written again once its bytes are handed out, so the client may hold a message's data for
// as long as it likes.
type arena struct {
	buf []byte
}

// reset makes the arena's last chunk writable again. Only for an arena whose messages are
// no longer referenced: the direct path's, once its publish requests have returned.
func (a *arena) reset() { a.buf = a.buf[:0] }

// encode appends r's envelope (fitted to budget) and returns it as a slice of its own, with
// capacity clipped so nothing appended to it can reach the next message.
func (a *arena) encode(r *collector.Record, budget int) (data []byte, truncated, ok bool) {
	need := collector.EnvelopeCost(r)
	if cap(a.buf)-len(a.buf) < need {
		// Chunks grow, so an arena that is reset and reused settles on one chunk that holds
		// a whole batch.
		a.buf = make([]byte, 0, max(arenaChunk, need, min(2*cap(a.buf), arenaMaxChunk)))
	}
	start := len(a.buf)
	a.buf, truncated, ok = appendFitted(a.buf, r, budget)
	return a.buf[start:len(a.buf):len(a.buf)], truncated, ok
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

// attributes builds a message's attributes in a new map; see fillAttributes.
func attributes(r *collector.Record, id string) (map[string]string, int) {
	m := make(map[string]string, 7)
	return m, fillAttributes(m, r, id)
}

// fillAttributes puts a message's attributes into m (which the caller has cleared) and returns
// their encoded size, reserving room for the truncated attribute so a record can be cut to fit
// before it is known whether it must be. Values are the source's strings (no copy) except id, a
// slice of the batch's one id string; a value that is not valid UTF-8 (proto strings must be)
// is repaired, which is the only case that allocates a string.
func fillAttributes(m map[string]string, r *collector.Record, id string) int {
	k := kubeOf(r)
	size := attrSize(attrTruncated, "true")
	put := func(key, v string) {
		m[key] = v
		size += attrSize(key, v)
	}
	put(attrNamespace, validUTF8(k.Namespace))
	put(attrPod, validUTF8(k.Pod))
	put(attrContainer, validUTF8(k.Container))
	put(attrStream, r.Stream.String())
	put(attrSource, validUTF8(sourceOf(r)))
	put(attrID, id)
	return size
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// dataBudget is how many bytes of data fit in a message of maxMessage bytes next to
// attributes of attrBytes and the ordering key, counted as the client counts them (proto.Size
// of the PubsubMessage), allowing the data field the longest length prefix it can need.
func dataBudget(maxMessage, attrBytes int, key string) int {
	n := maxMessage - attrBytes - protowire.SizeTag(1) - protowire.SizeVarint(MaxRequestBytes)
	if key != "" {
		n -= protowire.SizeTag(5) + protowire.SizeBytes(len(key))
	}
	return n
}

// attrSize is the encoded size of one map entry (field 2 of PubsubMessage).
func attrSize(k, v string) int {
	entry := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) +
		protowire.SizeTag(2) + protowire.SizeBytes(len(v))
	return protowire.SizeTag(2) + protowire.SizeBytes(entry)
}

// batchMessages is what one Send publishes: the messages and their results, index for index
// with the batch's records (a nil result is a record that was not published).
type batchMessages struct {
	msgs    []pubsub.Message
	results []*pubsub.PublishResult
	// ids holds every record's hex id back to back; attributes slice it.
	ids string
}

func newBatchMessages(records []*collector.Record) *batchMessages {
	ids := make([]byte, 0, 32*len(records))
	for _, r := range records {
		ids = r.ID.AppendHex(ids)
	}
	return &batchMessages{
		msgs:    make([]pubsub.Message, len(records)),
		results: make([]*pubsub.PublishResult, len(records)),
		ids:     string(ids),
	}
}

func (b *batchMessages) id(i int) string { return b.ids[32*i : 32*i+32] }
