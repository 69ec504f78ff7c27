package bigquery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// rowSchema is the Storage Write API view of the table: the normalized descriptor sent with
// the first append, and the field numbers the encoder writes.
type rowSchema struct {
	descriptor *descriptorpb.DescriptorProto
	top        struct{ id, time, stream, message, source, tag, kube, fields, namespace, pod protowire.Number }
	kube       struct{ namespace, pod, podUID, container, node, labels protowire.Number }
}

func newRowSchema() (*rowSchema, error) {
	ts, err := adapt.BQSchemaToStorageTableSchema(Schema())
	if err != nil {
		return nil, fmt.Errorf("storage schema: %w", err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ts, "root")
	if err != nil {
		return nil, fmt.Errorf("proto descriptor: %w", err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("proto descriptor: got %T, want a message", d)
	}
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		return nil, fmt.Errorf("normalize descriptor: %w", err)
	}
	s := &rowSchema{descriptor: dp}
	var missing []string
	num := func(m protoreflect.MessageDescriptor, name string) protowire.Number {
		f := m.Fields().ByName(protoreflect.Name(name))
		if f == nil {
			missing = append(missing, string(m.Name())+"."+name)
			return 0
		}
		return f.Number()
	}
	t := &s.top
	t.id, t.time, t.stream = num(md, "id"), num(md, "time"), num(md, "stream")
	t.message, t.source, t.tag = num(md, "message"), num(md, "source"), num(md, "tag")
	t.kube, t.fields = num(md, "kubernetes"), num(md, "fields")
	t.namespace, t.pod = num(md, "namespace"), num(md, "pod")
	if f := md.Fields().ByName("kubernetes"); f != nil && f.Message() != nil {
		km, k := f.Message(), &s.kube
		k.namespace, k.pod, k.podUID = num(km, "namespace"), num(km, "pod"), num(km, "pod_uid")
		k.container, k.node, k.labels = num(km, "container"), num(km, "node"), num(km, "labels")
	} else {
		missing = append(missing, "kubernetes (a RECORD)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("schema.json lacks envelope columns %v", missing)
	}
	return s, nil
}

// envelope is the DESIGN.md record as it arrives in a Pub/Sub message. Unknown keys are
// ignored, as a BigQuery subscription with drop_unknown_fields does.
type envelope struct {
	ID         string          `json:"id"`
	Time       string          `json:"time"`
	Stream     string          `json:"stream"`
	Message    string          `json:"message"`
	Source     string          `json:"source"`
	Tag        string          `json:"tag"`
	Kubernetes *kubeEnvelope   `json:"kubernetes"`
	Fields     json.RawMessage `json:"fields"`
}

type kubeEnvelope struct {
	Namespace string          `json:"namespace"`
	Pod       string          `json:"pod"`
	PodUID    string          `json:"pod_uid"`
	Container string          `json:"container"`
	Node      string          `json:"node"`
	Labels    json.RawMessage `json:"labels"`
}

// rowEncoder turns envelopes into protobuf rows. One per goroutine; it reuses its scratch.
type rowEncoder struct {
	s    *rowSchema
	env  envelope
	kube kubeEnvelope
	kbuf []byte
}

func newRowEncoder(s *rowSchema) *rowEncoder { return &rowEncoder{s: s} }

// errMalformed marks messages that can never become a row: they go to the dead-letter topic.
var errMalformed = errors.New("malformed envelope")

// appendRow appends the protobuf row for the envelope JSON data to dst. Errors wrap
// errMalformed and say what is wrong. The time is kept to the microsecond (TIMESTAMP's
// precision, sent as int64 microseconds as the Write API prefers); JSON columns are sent as
// their JSON text.
func (e *rowEncoder) appendRow(dst, data []byte) ([]byte, error) {
	e.env = envelope{}
	e.kube = kubeEnvelope{}
	e.env.Kubernetes = &e.kube
	if err := json.Unmarshal(data, &e.env); err != nil {
		return dst, fmt.Errorf("%w: %v", errMalformed, err)
	}
	env := &e.env
	if env.ID == "" {
		return dst, fmt.Errorf("%w: no id", errMalformed)
	}
	ts, err := time.Parse(time.RFC3339Nano, env.Time)
	if err != nil {
		return dst, fmt.Errorf("%w: time: %v", errMalformed, err)
	}
	if err := checkObject("fields", env.Fields); err != nil {
		return dst, err
	}
	k := env.Kubernetes // nil when the envelope said "kubernetes":null
	if k != nil {
		if err := checkObject("kubernetes.labels", k.Labels); err != nil {
			return dst, err
		}
	}

	f := &e.s.top
	dst = appendString(dst, f.id, env.ID)
	dst = protowire.AppendTag(dst, f.time, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(ts.UnixMicro()))
	dst = appendString(dst, f.stream, env.Stream)
	dst = appendString(dst, f.message, env.Message)
	dst = appendString(dst, f.source, env.Source)
	dst = appendString(dst, f.tag, env.Tag)
	if k != nil {
		kf := &e.s.kube
		kb := e.kbuf[:0]
		kb = appendString(kb, kf.namespace, k.Namespace)
		kb = appendString(kb, kf.pod, k.Pod)
		kb = appendString(kb, kf.podUID, k.PodUID)
		kb = appendString(kb, kf.container, k.Container)
		kb = appendString(kb, kf.node, k.Node)
		kb = appendJSON(kb, kf.labels, k.Labels)
		e.kbuf = kb
		dst = protowire.AppendTag(dst, f.kube, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kb)
		dst = appendString(dst, f.namespace, k.Namespace)
		dst = appendString(dst, f.pod, k.Pod)
	}
	dst = appendJSON(dst, f.fields, env.Fields)
	return dst, nil
}

// checkObject accepts a JSON object, null, or nothing: a JSON column holds the envelope's
// maps, and anything else means the producer is not tailgate.
func checkObject(name string, v json.RawMessage) error {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] == '{' || bytes.Equal(v, []byte("null")) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a JSON object", errMalformed, name)
}

func appendString(dst []byte, n protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, n, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// appendJSON writes a JSON column; null or absent leaves it NULL.
func appendJSON(dst []byte, n protowire.Number, v json.RawMessage) []byte {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return dst
	}
	dst = protowire.AppendTag(dst, n, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}
