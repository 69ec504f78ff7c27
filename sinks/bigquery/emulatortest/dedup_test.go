//go:build !race

package emulatortest

import (
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
)

// checkDedup reads the dedup view back column by column. It returns whether the emulator
// stored kubernetes.labels double-encoded (a JSON string holding the object's text): its
// known limit for JSON inside a RECORD written through the Storage Write API.
func checkDedup(t *testing.T, q *querier, f *fixture) (labelsDoubleEncoded bool) {
	rows := q.rows(t, "SELECT id, time, UNIX_MICROS(time) AS us, stream, message, source, tag, "+
		"kubernetes.namespace AS k_namespace, kubernetes.pod AS k_pod, kubernetes.pod_uid AS k_pod_uid, "+
		"kubernetes.container AS k_container, kubernetes.node AS k_node, "+
		"TO_JSON_STRING(kubernetes.labels) AS labels, TO_JSON_STRING(fields) AS fields, "+
		"JSON_VALUE(fields, '$.level') AS level, namespace, pod "+
		"FROM `"+project+"."+dataset+".records_dedup`")
	byID := map[string]*rec{}
	for _, r := range f.records {
		byID[r.id] = r
	}
	seen := map[string]bool{}
	for _, row := range rows {
		id, _ := row["id"].(string)
		r := byID[id]
		if r == nil || seen[id] {
			t.Errorf("id %q: unknown or seen twice", id)
			continue
		}
		seen[id] = true
		k := r.pod.src.Kube()
		want := r.time.Truncate(time.Microsecond)
		if got, _ := row["time"].(time.Time); !got.Equal(want) {
			t.Errorf("id %s: time %v, want %v (the envelope's %v to the microsecond)", id, got, want, r.time)
		}
		if row["us"] != r.time.UnixMicro() {
			t.Errorf("id %s: UNIX_MICROS(time) %v, want %d", id, row["us"], r.time.UnixMicro())
		}
		wantTag := ""
		if r.pod.forward {
			wantTag = r.pod.tag
		}
		for col, w := range map[string]string{
			"stream": r.stream, "message": r.message, "source": r.pod.src.Input, "tag": wantTag,
			"k_namespace": k.Namespace, "k_pod": k.Pod, "k_pod_uid": k.PodUID,
			"k_container": k.Container, "k_node": k.Node, "namespace": k.Namespace, "pod": k.Pod,
		} {
			if row[col] != w {
				t.Errorf("id %s: %s = %#v, want %q", id, col, row[col], w)
			}
		}
		if got, _ := row["fields"].(string); !jsonEqual(got, r.fields) {
			t.Errorf("id %s: fields %s, want %s", id, got, r.fields)
		}
		var wantLevel bigquery.Value // NULL when fields has no level
		if r.level != "" {
			wantLevel = r.level
		}
		if row["level"] != wantLevel {
			t.Errorf("id %s: JSON_VALUE(fields, '$.level') = %#v, want %#v", id, row["level"], wantLevel)
		}
		wantLabels, _ := json.Marshal(k.Labels)
		if k.Labels == nil {
			wantLabels = []byte("{}")
		}
		got, _ := row["labels"].(string)
		var inner string
		if json.Unmarshal([]byte(got), &inner) == nil && jsonEqual(inner, string(wantLabels)) {
			labelsDoubleEncoded = true // the emulator's limit, not the loader's
			continue
		}
		if !jsonEqual(got, string(wantLabels)) {
			t.Errorf("id %s: kubernetes.labels %s, want %s", id, got, wantLabels)
		}
	}
	if len(seen) != len(f.records) {
		t.Errorf("dedup view has %d distinct ids of %d records", len(seen), len(f.records))
	}
	if len(rows) != len(f.records) {
		t.Errorf("dedup view has %d rows; want %d, one per id", len(rows), len(f.records))
	}
	if labelsDoubleEncoded {
		t.Log("emulator limit: kubernetes.labels (JSON in a RECORD) reads back double-encoded; " +
			"queries on it are checked against the pod-name fallback")
	}
	return labelsDoubleEncoded
}
