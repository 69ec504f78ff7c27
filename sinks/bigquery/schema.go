package bigquery

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
)

//go:embed schema.json
var schemaJSON []byte

// ClusteringFields are the table's clustering columns. BigQuery clusters only on top-level,
// non-repeated columns, so kubernetes.namespace and kubernetes.pod are copied to the
// top-level namespace and pod columns.
var ClusteringFields = []string{"namespace", "pod"}

// Schema returns the table schema (schema.json).
func Schema() bigquery.Schema {
	s, err := bigquery.SchemaFromJSON(schemaJSON)
	if err != nil {
		// schema.json is compiled in and checked by tests; this is a build defect.
		panic(fmt.Sprintf("bigquery: embedded schema.json: %v", err))
	}
	return s
}

// SchemaJSON returns the embedded schema.json.
func SchemaJSON() []byte { return append([]byte(nil), schemaJSON...) }

// TableMetadata is the table Setup creates: the schema, day partitions on time (expiring
// after expiration when it is positive), clustering on namespace and pod.
func TableMetadata(expiration time.Duration) *bigquery.TableMetadata {
	return &bigquery.TableMetadata{
		Schema:      Schema(),
		Description: "tailgate log records (DESIGN.md envelope)",
		TimePartitioning: &bigquery.TimePartitioning{
			Type:       bigquery.DayPartitioningType,
			Field:      "time",
			Expiration: expiration,
		},
		Clustering: &bigquery.Clustering{Fields: ClusteringFields},
	}
}

// schemaDiff lists how have differs from want, one line per column ("missing column x",
// "column x: type STRING, want JSON"); nil when they match. Descriptions are ignored; extra
// columns in have are reported too, since the loader would not fill them.
func schemaDiff(have, want bigquery.Schema) []string {
	var out []string
	diffFields("", have, want, &out)
	sort.Strings(out)
	return out
}

func diffFields(prefix string, have, want bigquery.Schema, out *[]string) {
	byName := make(map[string]*bigquery.FieldSchema, len(have))
	for _, f := range have {
		byName[strings.ToLower(f.Name)] = f
	}
	for _, w := range want {
		name := prefix + w.Name
		h, ok := byName[strings.ToLower(w.Name)]
		if !ok {
			*out = append(*out, "missing column "+name)
			continue
		}
		delete(byName, strings.ToLower(w.Name))
		if h.Type != w.Type {
			*out = append(*out, fmt.Sprintf("column %s: type %s, want %s", name, h.Type, w.Type))
			continue
		}
		if h.Repeated != w.Repeated || h.Required != w.Required {
			*out = append(*out, fmt.Sprintf("column %s: mode %s, want %s", name, mode(h), mode(w)))
		}
		if w.Type == bigquery.RecordFieldType {
			diffFields(name+".", h.Schema, w.Schema, out)
		}
	}
	for _, h := range byName {
		*out = append(*out, "extra column "+prefix+h.Name)
	}
}

func mode(f *bigquery.FieldSchema) string {
	switch {
	case f.Repeated:
		return "REPEATED"
	case f.Required:
		return "REQUIRED"
	}
	return "NULLABLE"
}
