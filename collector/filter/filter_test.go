package filter

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailgate-dev/tailgate/collector"
)

type nextEmitter struct {
	records []collector.Record
	state   []collector.StateEntry
	dropped map[string]int
	calls   int
}

func (n *nextEmitter) Emit(_ context.Context, b *collector.Batch) (collector.Durable, error) {
	for _, r := range b.Records {
		r.Message = append([]byte(nil), r.Message...)
		r.Fields = append([]byte(nil), r.Fields...)
		n.records = append(n.records, r)
	}
	n.state = append(n.state, b.State...)
	return nil, nil
}
func (n *nextEmitter) Release(*collector.Source) {}
func (n *nextEmitter) Dropped(_ *collector.Source, _ collector.Stream, reason string, c int) {
	if n.dropped == nil {
		n.dropped = map[string]int{}
	}
	n.dropped[reason] += c
	n.calls++
}
func (n *nextEmitter) Altered(*collector.Source, collector.Stream, string, int) {}
func (n *nextEmitter) State() map[string][]byte                                 { return nil }

func src(ns, ctr string) *collector.Source {
	return collector.NewSource(1, "pods", &collector.Kube{Namespace: ns, Pod: "p", Container: ctr})
}

func TestFilters(t *testing.T) {
	shop, sys, proxy := src("shop", "app"), src("kube-system", "dns"), src("shop", "istio-proxy")
	recs := []collector.Record{
		{Source: shop, Stream: collector.StreamStdout, Message: []byte("GET /healthz 200")},
		{Source: shop, Stream: collector.StreamStdout, Message: []byte("order 7 placed")},
		{Source: sys, Stream: collector.StreamStdout, Message: []byte("dns query")},
		{Source: sys, Stream: collector.StreamStdout, Message: []byte("dns query 2")},
		{Source: proxy, Stream: collector.StreamStderr, Message: []byte("envoy access")},
		{Source: nil, Stream: collector.StreamApp, Message: []byte("forward record")},
	}
	f := func(name string, filters []collector.FilterConfig, want []string, dropped map[string]int) {
		t.Helper()
		rules, err := Compile(filters, nil)
		if err != nil {
			t.Fatal(err)
		}
		next := &nextEmitter{}
		e := NewEmitter(next, rules, nil)
		b := &collector.Batch{Records: append([]collector.Record(nil), recs...), State: []collector.StateEntry{{Key: "k", Value: []byte("v")}}}
		if _, err := e.Emit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range next.records {
			got = append(got, string(r.Message))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: kept %q, want %q", name, got, want)
		}
		for reason, n := range dropped {
			if next.dropped[reason] != n {
				t.Errorf("%s: dropped[%s] = %d, want %d (%v)", name, reason, next.dropped[reason], n, next.dropped)
			}
		}
		if len(next.state) != 1 || next.state[0].Key != "k" {
			t.Errorf("%s: positions not passed on: %v", name, next.state)
		}
		if len(b.Records) != len(recs) || string(b.Records[0].Message) != "GET /healthz 200" {
			t.Errorf("%s: the input's batch was changed", name)
		}
	}
	f("drop by message", []collector.FilterConfig{{Action: "drop", Message: `^GET /healthz`}},
		[]string{"order 7 placed", "dns query", "dns query 2", "envoy access", "forward record"}, map[string]int{"filtered": 1})
	f("drop a namespace glob with a reason", []collector.FilterConfig{{Action: "drop", Namespace: "kube-*", Reason: "system"}},
		[]string{"GET /healthz 200", "order 7 placed", "envoy access", "forward record"}, map[string]int{"system": 2})
	f("drop needs every field to match", []collector.FilterConfig{{Action: "drop", Namespace: "shop", Container: "istio-*", Message: "access"}},
		[]string{"GET /healthz 200", "order 7 placed", "dns query", "dns query 2", "forward record"}, map[string]int{"filtered": 1})
	f("keep drops what does not match", []collector.FilterConfig{{Action: "keep", Namespace: "shop"}},
		[]string{"GET /healthz 200", "order 7 placed", "envoy access"}, map[string]int{"filtered": 3})
	f("rules apply in order", []collector.FilterConfig{{Action: "keep", Namespace: "shop"}, {Action: "drop", Container: "istio-proxy", Reason: "mesh"}},
		[]string{"GET /healthz 200", "order 7 placed"}, map[string]int{"filtered": 3, "mesh": 1})
	f("everything dropped, positions still go", []collector.FilterConfig{{Action: "drop", Message: "."}},
		nil, map[string]int{"filtered": 6})
}

func TestRedact(t *testing.T) {
	rules, err := Compile(nil, []collector.RedactConfig{
		{Pattern: `(password|token)=[^\s",]+`, Replacement: "$1=***", Reason: "credentials"},
		{Pattern: `\b\d{4}-\d{4}-\d{4}-\d{4}\b`, Replacement: "[card]", Reason: "card"},
		{Pattern: `,"b":"y"\}`, Replacement: ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"reason"})
	next := &nextEmitter{}
	e := NewEmitter(next, rules, c)
	tailJSON := []byte(`{"msg":"login","token=abc123":1}`)
	recs := []collector.Record{
		{Message: []byte("login password=hunter2 ok")},
		{Message: []byte("paid with 4111-1111-1111-1111, token=xyz")},
		{Message: []byte("nothing secret")},
		{Message: tailJSON, Fields: tailJSON},
		{Message: []byte("fwd"), Fields: []byte(`{"log":"password=s3cret","n":1}`)},
		{Message: []byte(""), Fields: []byte(`{"a":"password=x","b":"y"}`)},
	}
	if _, err := e.Emit(context.Background(), &collector.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ msg, fields string }{
		{"login password=*** ok", ""},
		{"paid with [card], token=***", ""},
		{"nothing secret", ""},
		{`{"msg":"login","token=***":1}`, `{"msg":"login","token=***":1}`},
		{"fwd", `{"log":"password=***","n":1}`},
		{"", ""}, // a rule cut the object: the fields cannot stay
	}
	for i, w := range want {
		if got := next.records[i]; string(got.Message) != w.msg || string(got.Fields) != w.fields {
			t.Errorf("record %d: %q %q, want %q %q", i, got.Message, got.Fields, w.msg, w.fields)
		}
	}
	// Per rule's reason; a match in the message and one in the fields count apart.
	for reason, want := range map[string]float64{"credentials": 5, "card": 1, DefaultRedactReason: 1} {
		if got := testutil.ToFloat64(c.WithLabelValues(reason)); got != want {
			t.Errorf("redactions {reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// TestRedactKeepsFieldsAnObject: a redaction that leaves valid JSON that is no object (a
// string, an array) drops the fields, which the envelope writes as its "fields" object.
func TestRedactKeepsFieldsAnObject(t *testing.T) {
	rules, err := Compile(nil, []collector.RedactConfig{
		{Pattern: `^\{"card":"[0-9-]+"\}$`, Replacement: `"[redacted]"`},
		{Pattern: `^\{"n":(\[1\])\}$`, Replacement: "$1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	next := &nextEmitter{}
	e := NewEmitter(next, rules, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"reason"}))
	tailJSON := []byte(`{"card":"4111-1111-1111-1111"}`)
	recs := []collector.Record{
		{Message: tailJSON, Fields: tailJSON},
		{Message: []byte("fwd"), Fields: []byte(`{"n":[1]}`)},
	}
	if _, err := e.Emit(context.Background(), &collector.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ msg, fields string }{
		{`"[redacted]"`, ""},
		{"fwd", ""},
	}
	for i, w := range want {
		if got := next.records[i]; string(got.Message) != w.msg || string(got.Fields) != w.fields {
			t.Errorf("record %d: %q %q, want %q %q", i, got.Message, got.Fields, w.msg, w.fields)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	f := func(filters []collector.FilterConfig, redact []collector.RedactConfig, want string) {
		t.Helper()
		if _, err := Compile(filters, redact); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	f([]collector.FilterConfig{{Action: "maybe", Message: "x"}}, nil, "not one of drop, keep")
	f([]collector.FilterConfig{{Action: "drop"}}, nil, "at least one of")
	f([]collector.FilterConfig{{Action: "drop", Message: "("}}, nil, "filters[0].message")
	f([]collector.FilterConfig{{Action: "drop", Namespace: "["}}, nil, "bad glob")
	f(nil, []collector.RedactConfig{{Pattern: "a*"}}, "matches the empty string")
	f(nil, []collector.RedactConfig{{Pattern: "("}}, "redact[0].pattern")
	if r, err := Compile(nil, nil); r != nil || err != nil {
		t.Errorf("no rules: %v %v", r, err)
	}
}

func BenchmarkFilterEmit(b *testing.B) {
	rules, _ := Compile([]collector.FilterConfig{{Action: "drop", Namespace: "kube-*"}, {Action: "drop", Message: `^GET /healthz`}},
		[]collector.RedactConfig{{Pattern: `password=\S+`, Replacement: "password=***"}})
	s := src("shop", "app")
	var batch collector.Batch
	for i := 0; i < 256; i++ {
		batch.Records = append(batch.Records, collector.Record{Source: s, Stream: collector.StreamStdout,
			Message: []byte(`2026-11-23T03:00:00Z INFO request done path=/api/v1/items status=200 dur=1.2ms user=42`)})
	}
	e := NewEmitter(&discard{}, rules, nil)
	b.ReportAllocs()
	for b.Loop() {
		e.Emit(context.Background(), &batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Records)), "ns/record")
}

type discard struct{ nextEmitter }

func (*discard) Emit(context.Context, *collector.Batch) (collector.Durable, error) { return nil, nil }
