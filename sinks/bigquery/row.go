package bigquery

import (
	"bytes"
	"errors"
	"fmt"

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
	kube       struct {
		namespace, pod, podUID, container, node, labels protowire.Number
		workload, workloadKind, image, annotations      protowire.Number
	}
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
		k.workload, k.workloadKind = num(km, "workload"), num(km, "workload_kind")
		k.image, k.annotations = num(km, "image"), num(km, "annotations")
	} else {
		missing = append(missing, "kubernetes (a RECORD)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("schema.json lacks envelope columns %v", missing)
	}
	return s, nil
}

// rowEncoder turns envelopes into protobuf rows. One per goroutine; it reuses its scratch,
// so in steady state a row costs no allocation.
type rowEncoder struct {
	s   *rowSchema
	sc  jsonScanner
	env envelope
}

// envelope holds the columns of the envelope being encoded: slices of the message data, or
// of the scanner's scratch for strings that had escapes.
type envelope struct {
	id, time, stream, message, source, tag []byte
	// kube is false when the envelope said "kubernetes":null. It starts true: an envelope
	// without the key still gets the (empty) record.
	kube                                    bool
	namespace, pod, podUID, container, node []byte
	workload, workloadKind, image           []byte
	labels, annotations, fields             []byte // JSON text as written; nil when absent
	// typeErr is the first member whose value has the wrong JSON type; it is reported
	// only when the text is valid JSON, as encoding/json reports syntax errors first.
	typeErr string
}

func newRowEncoder(s *rowSchema) *rowEncoder { return &rowEncoder{s: s} }

// errMalformed marks messages that can never become a row: they go to the dead-letter topic.
var errMalformed = errors.New("malformed envelope")

// appendRow appends the protobuf row for the envelope JSON data to dst; on error dst is
// returned as it was. Errors wrap errMalformed and say what is wrong.
//
// It accepts what encoding/json.Unmarshal into the envelope struct accepted, with the same
// result: members in any order, the last of duplicate keys winning, keys matched without
// regard to case, unknown members skipped, null leaving a string column empty and a JSON
// column NULL. id and time are required; the time is kept to the microsecond (TIMESTAMP's
// precision, sent as int64 microseconds as the Write API prefers); JSON columns (fields,
// kubernetes.labels) must be objects and are sent as their JSON text.
func (e *rowEncoder) appendRow(dst, data []byte) ([]byte, error) {
	e.env = envelope{kube: true}
	e.sc.reset(data)
	e.scanEnvelope()
	env := &e.env
	if msg, pos := e.sc.err(); msg != "" {
		if pos < len(data) && msg != "exceeded max depth" {
			return dst, fmt.Errorf("%w: %s %q at offset %d", errMalformed, msg, data[pos], pos)
		}
		return dst, fmt.Errorf("%w: %s", errMalformed, msg)
	}
	if env.typeErr != "" {
		return dst, fmt.Errorf("%w: %s", errMalformed, env.typeErr)
	}
	if len(env.id) == 0 {
		return dst, fmt.Errorf("%w: no id", errMalformed)
	}
	us, err := parseMicros(env.time)
	if err != nil {
		return dst, fmt.Errorf("%w: time: %v", errMalformed, err)
	}
	if err := checkObject("fields", env.fields); err != nil {
		return dst, err
	}
	if env.kube {
		if err := checkObject("kubernetes.labels", env.labels); err != nil {
			return dst, err
		}
		if err := checkObject("kubernetes.annotations", env.annotations); err != nil {
			return dst, err
		}
	}

	f := &e.s.top
	dst = appendString(dst, f.id, env.id)
	dst = protowire.AppendTag(dst, f.time, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(us))
	dst = appendString(dst, f.stream, env.stream)
	dst = appendString(dst, f.message, env.message)
	dst = appendString(dst, f.source, env.source)
	dst = appendString(dst, f.tag, env.tag)
	if env.kube {
		kf := &e.s.kube
		n := sizeString(kf.namespace, env.namespace) + sizeString(kf.pod, env.pod) +
			sizeString(kf.podUID, env.podUID) + sizeString(kf.container, env.container) +
			sizeString(kf.node, env.node) + sizeString(kf.workload, env.workload) +
			sizeString(kf.workloadKind, env.workloadKind) + sizeString(kf.image, env.image)
		if len(env.labels) > 0 && !isNull(env.labels) {
			n += sizeString(kf.labels, env.labels)
		}
		if len(env.annotations) > 0 && !isNull(env.annotations) {
			n += sizeString(kf.annotations, env.annotations)
		}
		dst = protowire.AppendTag(dst, f.kube, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		dst = appendString(dst, kf.namespace, env.namespace)
		dst = appendString(dst, kf.pod, env.pod)
		dst = appendString(dst, kf.podUID, env.podUID)
		dst = appendString(dst, kf.container, env.container)
		dst = appendString(dst, kf.node, env.node)
		dst = appendJSON(dst, kf.labels, env.labels)
		dst = appendString(dst, kf.workload, env.workload)
		dst = appendString(dst, kf.workloadKind, env.workloadKind)
		dst = appendString(dst, kf.image, env.image)
		dst = appendJSON(dst, kf.annotations, env.annotations)
		dst = appendString(dst, f.namespace, env.namespace)
		dst = appendString(dst, f.pod, env.pod)
	}
	dst = appendJSON(dst, f.fields, env.fields)
	return dst, nil
}

// Envelope members, by the names encoding/json matched (exactly, else case-insensitively).
var (
	topNames  = [...]string{"id", "time", "stream", "message", "source", "tag", "kubernetes", "fields"}
	kubeNames = [...]string{"namespace", "pod", "pod_uid", "container", "node", "labels",
		"workload", "workload_kind", "image", "annotations"}
)

// scanEnvelope fills e.env from the JSON text in e.sc. A top-level null is an envelope with
// nothing in it, as encoding/json leaves the struct alone for null.
func (e *rowEncoder) scanEnvelope() {
	sc, env := &e.sc, &e.env
	switch sc.peek() {
	case '{':
	case 'n':
		if sc.literal("null") {
			sc.end()
		}
		return
	default:
		if sc.skipValue(0) && sc.end() {
			env.typeErr = "envelope is not a JSON object"
		}
		return
	}
	sc.pos++
	for first := true; ; first = false {
		raw, plain, done, ok := sc.nextKey(first)
		if !ok {
			return
		}
		if done {
			sc.end()
			return
		}
		var ok2 bool
		switch matchName(sc.value(raw, plain), topNames[:]) {
		case 0:
			ok2 = e.stringMember(&env.id, "id")
		case 1:
			ok2 = e.stringMember(&env.time, "time")
		case 2:
			ok2 = e.stringMember(&env.stream, "stream")
		case 3:
			ok2 = e.stringMember(&env.message, "message")
		case 4:
			ok2 = e.stringMember(&env.source, "source")
		case 5:
			ok2 = e.stringMember(&env.tag, "tag")
		case 6:
			ok2 = e.kubeMember()
		case 7:
			ok2 = e.rawMember(&env.fields, 1)
		default:
			ok2 = sc.skipValue(1)
		}
		if !ok2 {
			return
		}
	}
}

// kubeMember reads the value of the kubernetes member. Like encoding/json decoding into a
// pointer, null drops what earlier kubernetes members set, and an object after null starts
// afresh, while an object after an object merges into it.
func (e *rowEncoder) kubeMember() bool {
	sc, env := &e.sc, &e.env
	switch sc.peek() {
	case '{':
	case 'n':
		env.kube = false
		env.clearKube()
		return sc.literal("null")
	default:
		e.typeErr("kubernetes is not an object")
		return sc.skipValue(1)
	}
	if sc.pos++; !env.kube {
		env.kube = true
		env.clearKube()
	}
	for first := true; ; first = false {
		raw, plain, done, ok := sc.nextKey(first)
		if !ok || done {
			return ok
		}
		switch matchName(sc.value(raw, plain), kubeNames[:]) {
		case 0:
			ok = e.stringMember(&env.namespace, "kubernetes.namespace")
		case 1:
			ok = e.stringMember(&env.pod, "kubernetes.pod")
		case 2:
			ok = e.stringMember(&env.podUID, "kubernetes.pod_uid")
		case 3:
			ok = e.stringMember(&env.container, "kubernetes.container")
		case 4:
			ok = e.stringMember(&env.node, "kubernetes.node")
		case 5:
			ok = e.rawMember(&env.labels, 2)
		case 6:
			ok = e.stringMember(&env.workload, "kubernetes.workload")
		case 7:
			ok = e.stringMember(&env.workloadKind, "kubernetes.workload_kind")
		case 8:
			ok = e.stringMember(&env.image, "kubernetes.image")
		case 9:
			ok = e.rawMember(&env.annotations, 2)
		default:
			ok = sc.skipValue(2)
		}
		if !ok {
			return false
		}
	}
}

func (env *envelope) clearKube() {
	env.namespace, env.pod, env.podUID, env.container, env.node, env.labels = nil, nil, nil, nil, nil, nil
	env.workload, env.workloadKind, env.image, env.annotations = nil, nil, nil, nil
}

// stringMember reads a string column: null leaves it as it was, another type is an error.
func (e *rowEncoder) stringMember(dst *[]byte, name string) bool {
	sc := &e.sc
	switch sc.peek() {
	case '"':
		raw, plain, ok := sc.scanString()
		if ok {
			*dst = sc.value(raw, plain)
		}
		return ok
	case 'n':
		return sc.literal("null")
	}
	if !sc.skipValue(1) {
		return false
	}
	e.typeErr(name + " is not a string")
	return true
}

// rawMember keeps the JSON text of a JSON column's value (checked to be an object later).
func (e *rowEncoder) rawMember(dst *[]byte, depth int) bool {
	sc := &e.sc
	sc.skipSpace()
	start := sc.pos
	if !sc.skipValue(depth) {
		return false
	}
	*dst = sc.data[start:sc.pos]
	return true
}

func (e *rowEncoder) typeErr(reason string) {
	if e.env.typeErr == "" {
		e.env.typeErr = reason
	}
}

// matchName returns the index of key in names, or -1.
func matchName(key []byte, names []string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	for i, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return i
		}
	}
	return -1
}

// checkObject accepts a JSON object, null, or nothing: a JSON column holds the envelope's
// maps, and anything else means the producer is not tailgate.
func checkObject(name string, v []byte) error {
	if len(v) == 0 || v[0] == '{' || isNull(v) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a JSON object", errMalformed, name)
}

func isNull(v []byte) bool { return string(v) == "null" }

func sizeString(n protowire.Number, s []byte) int {
	return protowire.SizeTag(n) + protowire.SizeBytes(len(s))
}

func appendString(dst []byte, n protowire.Number, s []byte) []byte {
	dst = protowire.AppendTag(dst, n, protowire.BytesType)
	return protowire.AppendBytes(dst, s)
}

// appendJSON writes a JSON column; null or absent leaves it NULL.
func appendJSON(dst []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 || isNull(v) {
		return dst
	}
	return appendString(dst, n, v)
}
