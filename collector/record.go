package collector

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
)

// Stream says which stream of its source a record came from.
type Stream uint8

const (
	StreamUnknown Stream = iota
	StreamStdout
	StreamStderr
	StreamApp // forward-protocol records
)

func (s Stream) String() string {
	switch s {
	case StreamStdout:
		return "stdout"
	case StreamStderr:
		return "stderr"
	case StreamApp:
		return "app"
	}
	return "unknown"
}

// ID is a record's stable identity: the key of its source instance (a log file generation, a
// forward chunk) and the record's position in it. The same source position yields the same ID
// after a crash and a replay, which is what lets BigQuery drop duplicates.
type ID [16]byte

// MakeID builds the ID of the record at position pos of the source instance key.
func MakeID(key, pos uint64) ID {
	var id ID
	binary.BigEndian.PutUint64(id[:8], key)
	binary.BigEndian.PutUint64(id[8:], pos)
	return id
}

// AppendHex appends the 32 lowercase hex digits of id.
func (id ID) AppendHex(dst []byte) []byte {
	// Four bytes at a time into eight hex digits (every envelope carries one id).
	o := len(dst)
	dst = slices.Grow(dst, 2*len(id))[:o+2*len(id)]
	for i := 0; i < len(id); i += 4 {
		binary.LittleEndian.PutUint64(dst[o+2*i:], hex4(binary.LittleEndian.Uint32(id[i:])))
	}
	return dst
}

// hex4 returns the lowercase hex digits of the four bytes of x (little-endian, so the first
// byte's digits come first) as the eight bytes of a little-endian word.
func hex4(x uint32) uint64 {
	const low = 0x0f0f0f0f0f0f0f0f
	s := uint64(x)
	s = (s | s<<16) & 0x0000ffff0000ffff
	s = (s | s<<8) & 0x00ff00ff00ff00ff // byte 2i holds input byte i
	n := (s>>4)&low | (s&low)<<8        // byte 2i its high nibble, 2i+1 its low one
	letters := (n + 0x0606060606060606) >> 4 & 0x0101010101010101
	return n + 0x3030303030303030 + letters*('a'-'0'-10)
}

func (id ID) String() string { return string(id.AppendHex(nil)) }

// Record flags.
const (
	// FlagTruncated marks a record cut at max_line_bytes (or a destination's limit).
	FlagTruncated uint8 = 1 << iota
	// FlagPart marks one ordered part of a record split at a destination's size limit.
	FlagPart
)

// partShift places a part number in the position half of an ID. Positions are byte offsets or
// record indexes, far below 2^48, so a part ID never equals a real record's ID.
const partShift = 48

// Part returns the ID of part i (i >= 1) of the record with this ID; part 0 keeps the ID. The
// same record split the same way yields the same part IDs after a replay.
func (id ID) Part(i int) ID {
	if i <= 0 {
		return id
	}
	pos := binary.BigEndian.Uint64(id[8:])
	binary.BigEndian.PutUint64(id[8:], pos^uint64(i&0xffff)<<partShift)
	return id
}

// Record is one log record. Message, Tag and Fields are borrowed: they point into a buffer the
// producer owns (an input's read buffer, a decoded frame) and are valid only as long as the
// producer says. Kubernetes metadata is reached through Source, never copied per record.
type Record struct {
	Source *Source
	Time   int64 // Unix nanoseconds
	ID     ID
	Stream Stream
	Flags  uint8
	// Parts is, on a part of a record the pipeline split at a sink's size limit (FlagPart),
	// how many parts the record was split into; 0 when unknown (a part replayed from the
	// dead-letter store). It lives only between the pipeline and a sink: frames don't hold it.
	Parts uint32
	// Message is the reassembled line without its newline.
	Message []byte
	// Tag is the forward tag; empty for tailed records.
	Tag []byte
	// Fields is a JSON object (the forward record map, or a tailed line parsed as JSON), or nil.
	Fields []byte
}

// Kube is the Kubernetes identity of a log source. It is immutable once published: an update
// (new labels from the watch) publishes a new Kube on the Source.
type Kube struct {
	Namespace string
	Pod       string
	PodUID    string
	Container string
	Node      string
	Labels    map[string]string
	// From the pod watch: the workload that owns the pod (the Deployment behind a ReplicaSet,
	// the CronJob behind a Job), the container's image, and the annotations chosen in config.
	Workload     string
	WorkloadKind string
	Image        string
	Annotations  map[string]string
}

// Source is where records come from: one container's log file, or one forward connection.
// Every record of the source points at it, so metadata costs nothing per record.
type Source struct {
	// Key identifies the source in buffer frames; unique within a node and a data dir.
	Key uint64
	// Input is the name of the input that reads it.
	Input string

	kube atomic.Pointer[kubeView]
	// stats is owned by the pipeline (per-pod counters); nil until the first Emit.
	stats atomic.Pointer[sourceStats]
}

// kubeView is a published Kube with its pre-rendered JSON object.
type kubeView struct {
	kube    *Kube
	json    []byte // {"namespace":...} rendered once
	version uint32
}

// NewSource returns a source with the given key, input name and metadata (which may be nil).
func NewSource(key uint64, input string, k *Kube) *Source {
	s := &Source{Key: key, Input: input}
	s.SetKube(k)
	return s
}

// Kube returns the current metadata, or nil.
func (s *Source) Kube() *Kube {
	if v := s.kube.Load(); v != nil {
		return v.kube
	}
	return nil
}

// SetKube publishes new metadata for the source; records emitted after it carry it.
func (s *Source) SetKube(k *Kube) {
	var version uint32 = 1
	if old := s.kube.Load(); old != nil {
		version = old.version + 1
	}
	if k == nil {
		s.kube.Store(&kubeView{version: version})
		return
	}
	s.kube.Store(&kubeView{kube: k, json: appendKubeJSON(nil, k), version: version})
}

func (s *Source) view() *kubeView {
	v := s.kube.Load()
	if v == nil {
		return &kubeView{}
	}
	return v
}
