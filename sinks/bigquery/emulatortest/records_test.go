//go:build !race

package emulatortest

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// pod is one log source of the fixture with the workload queries.sql should derive for it:
// from its labels (app.kubernetes.io/name, then app) or, when labels can't be read, from
// its name without the ReplicaSet and pod hashes.
type pod struct {
	src          *collector.Source
	byLabel      string
	byName       string
	forward      bool   // records come from the forward input: stream app, a tag, fields
	tag          string // forward tag
	stderrEveryN int    // every n-th tailed record is on stderr (0: never)
}

func fixturePods() []*pod {
	kube := func(ns, name, container string, labels map[string]string) *collector.Kube {
		return &collector.Kube{Namespace: ns, Pod: name, PodUID: "uid-" + name, Container: container,
			Node: "node-1", Labels: labels}
	}
	return []*pod{
		{src: collector.NewSource(1, "pods", kube("shop", "cart-7d9f8b6c5d-x7k2p", "app",
			map[string]string{"app.kubernetes.io/name": "shop-cart", "pod-template-hash": "7d9f8b6c5d"})),
			byLabel: "shop-cart", byName: "cart", stderrEveryN: 7},
		{src: collector.NewSource(2, "pods", kube("shop", "payments-0", "server",
			map[string]string{"app": "payments"})),
			byLabel: "payments", byName: "payments-0", stderrEveryN: 5},
		{src: collector.NewSource(3, "pods", kube("kube-system", "coredns-5d78c9869d-abcde", "coredns", nil)),
			byLabel: "coredns", byName: "coredns"},
		{src: collector.NewSource(4, "apps", kube("shop", "orders-6f7b9c8d4-q9w8e", "orders",
			map[string]string{"app": "orders"})),
			byLabel: "orders", byName: "orders", forward: true, tag: "app.orders"},
	}
}

// rec is one record of the fixture and the facts the queries should find about it.
type rec struct {
	pod     *pod
	id      string
	time    time.Time // nanoseconds, as the envelope carries it
	stream  string
	message string
	fields  string // the JSON object, "{}" when none
	level   string // fields.level, "" when none
	data    []byte // the envelope: a Pub/Sub message body
}

// fixture is every record once, and the messages published: the records plus duplicates
// (the same envelope twice, as a replay after a crash produces).
type fixture struct {
	records   []*rec
	published []*rec
}

const (
	fixtureRecords = 300
	duplicateEvery = 10 // records 0, 10, 20, ... are published twice
)

// newFixture builds records over the half hour before now, with sub-microsecond times so the
// TIMESTAMP column's truncation shows.
func newFixture(now time.Time) *fixture {
	pods := fixturePods()
	base := now.Truncate(time.Second).Add(-45 * time.Minute)
	f := &fixture{}
	for i := range fixtureRecords {
		p := pods[i%len(pods)]
		r := collector.Record{
			Source: p.src,
			Time:   base.Add(time.Duration(i)*6*time.Second + time.Duration(i*1234567+891)).UnixNano(),
			ID:     collector.MakeID(p.src.Key, uint64(i)),
			Stream: collector.StreamStdout,
		}
		var level string
		switch {
		case p.forward:
			r.Stream = collector.StreamApp
			r.Tag = []byte(p.tag)
			level = []string{"info", "warn", "ERROR", "info", "fatal"}[i%5]
			r.Message = fmt.Appendf(nil, "order o-%d state changed", i)
			r.Fields = fmt.Appendf(nil, `{"level":%q,"order_id":"o-%d","amount":%d.25,"tags":["a","b"],"nested":{"ok":true}}`,
				level, i, i)
		case i%3 == 0:
			level = []string{"info", "error", "debug"}[i%3]
			r.Message = fmt.Appendf(nil, `{"level":%q,"msg":"request %d","latency_ms":%d}`, level, i, i%97)
			r.Fields = r.Message
		default:
			r.Message = []byte([]string{
				"GET /cart/%d 200",
				"NullPointerException in handler %d", // no word boundary before Exception
				"upstream error: connection reset (request %d)",
				"Panic averted, request %d retried",
				"ünïcode ✓ line %d",
			}[i%5])
			r.Message = fmt.Appendf(nil, string(r.Message), i)
		}
		if p.stderrEveryN > 0 && i%p.stderrEveryN == 0 && !p.forward {
			r.Stream = collector.StreamStderr
		}
		fields := string(r.Fields)
		if fields == "" {
			fields = "{}"
		}
		x := &rec{pod: p, id: r.ID.String(), time: time.Unix(0, r.Time).UTC(), stream: r.Stream.String(),
			message: string(r.Message), fields: fields, level: level, data: r.AppendJSON(nil)}
		f.records = append(f.records, x)
		f.published = append(f.published, x)
		if i%duplicateEvery == 0 {
			f.published = append(f.published, x)
		}
	}
	return f
}

// errorWords is queries.sql's REGEXP_CONTAINS pattern; BigQuery and Go both use RE2.
var errorWords = regexp.MustCompile(`(?i)\b(error|exception|panic|fatal)\b`)

// isError is query 1's condition.
func (r *rec) isError() bool {
	switch strings.ToLower(r.level) {
	case "error", "fatal", "panic":
		return true
	}
	return r.stream == "stderr" || errorWords.MatchString(r.message)
}
