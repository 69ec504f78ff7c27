package bigquery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// oracleEncoder is the encoding/json row encoder that rowEncoder replaced, kept as the
// reference its semantics are checked against (FuzzRowEncoder, TestRowEncoderMatchesOracle).
type oracleEncoder struct {
	s    *rowSchema
	env  oracleEnvelope
	kube oracleKube
	kbuf []byte
}

type oracleEnvelope struct {
	ID         string          `json:"id"`
	Time       string          `json:"time"`
	Stream     string          `json:"stream"`
	Message    string          `json:"message"`
	Source     string          `json:"source"`
	Tag        string          `json:"tag"`
	Kubernetes *oracleKube     `json:"kubernetes"`
	Fields     json.RawMessage `json:"fields"`
}

type oracleKube struct {
	Namespace string          `json:"namespace"`
	Pod       string          `json:"pod"`
	PodUID    string          `json:"pod_uid"`
	Container string          `json:"container"`
	Node      string          `json:"node"`
	Labels    json.RawMessage `json:"labels"`

	Workload     string          `json:"workload"`
	WorkloadKind string          `json:"workload_kind"`
	Image        string          `json:"image"`
	Annotations  json.RawMessage `json:"annotations"`
}

func (e *oracleEncoder) appendRow(dst, data []byte) ([]byte, error) {
	e.env = oracleEnvelope{}
	e.kube = oracleKube{}
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
	if err := oracleCheckObject("fields", env.Fields); err != nil {
		return dst, err
	}
	k := env.Kubernetes // nil when the envelope said "kubernetes":null
	if k != nil {
		if err := oracleCheckObject("kubernetes.labels", k.Labels); err != nil {
			return dst, err
		}
		if err := oracleCheckObject("kubernetes.annotations", k.Annotations); err != nil {
			return dst, err
		}
	}

	f := &e.s.top
	dst = oracleString(dst, f.id, env.ID)
	dst = protowire.AppendTag(dst, f.time, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(ts.UnixMicro()))
	dst = oracleString(dst, f.stream, env.Stream)
	dst = oracleString(dst, f.message, env.Message)
	dst = oracleString(dst, f.source, env.Source)
	dst = oracleString(dst, f.tag, env.Tag)
	if k != nil {
		kf := &e.s.kube
		kb := e.kbuf[:0]
		kb = oracleString(kb, kf.namespace, k.Namespace)
		kb = oracleString(kb, kf.pod, k.Pod)
		kb = oracleString(kb, kf.podUID, k.PodUID)
		kb = oracleString(kb, kf.container, k.Container)
		kb = oracleString(kb, kf.node, k.Node)
		kb = oracleJSON(kb, kf.labels, k.Labels)
		kb = oracleString(kb, kf.workload, k.Workload)
		kb = oracleString(kb, kf.workloadKind, k.WorkloadKind)
		kb = oracleString(kb, kf.image, k.Image)
		kb = oracleJSON(kb, kf.annotations, k.Annotations)
		e.kbuf = kb
		dst = protowire.AppendTag(dst, f.kube, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kb)
		dst = oracleString(dst, f.namespace, k.Namespace)
		dst = oracleString(dst, f.pod, k.Pod)
	}
	dst = oracleJSON(dst, f.fields, env.Fields)
	return dst, nil
}

func oracleCheckObject(name string, v json.RawMessage) error {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] == '{' || bytes.Equal(v, []byte("null")) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a JSON object", errMalformed, name)
}

func oracleString(dst []byte, n protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, n, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func oracleJSON(dst []byte, n protowire.Number, v json.RawMessage) []byte {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return dst
	}
	dst = protowire.AppendTag(dst, n, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}
