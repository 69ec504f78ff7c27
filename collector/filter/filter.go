// Package filter drops, keeps and redacts records between an input and the pipeline: the
// filters and redact rules of a tail or forward input. It wraps the input's Emitter, so the
// input code knows nothing of it, and costs nothing when an input has no rules (it is not
// installed). It never changes a record's identity, time or source, and it passes the input's
// positions on untouched: a dropped record's position still becomes durable.
package filter

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/internal/jsonscan"
)

// DefaultReason labels filtered records in tailgate_pod_log_dropped_total.
const DefaultReason = "filtered"

// DefaultRedactReason labels a redact rule's matches in tailgate_input_redactions_total.
const DefaultRedactReason = "redact"

// Rules are an input's compiled filters and redactions.
type Rules struct {
	filters []rule
	redact  []redaction
}

type rule struct {
	keep      bool
	namespace string // glob; "" matches anything
	container string // glob; "" matches anything
	message   *regexp.Regexp
	reason    string
}

type redaction struct {
	re     *regexp.Regexp
	with   []byte
	reason string
}

// Compile builds the rules of one input; nil, nil when it has none.
func Compile(filters []collector.FilterConfig, redact []collector.RedactConfig) (*Rules, error) {
	if len(filters) == 0 && len(redact) == 0 {
		return nil, nil
	}
	r := &Rules{}
	for i, f := range filters {
		if f.Action != "drop" && f.Action != "keep" {
			return nil, fmt.Errorf("filters[%d].action %q is not one of drop, keep", i, f.Action)
		}
		if f.Namespace == "" && f.Container == "" && f.Message == "" {
			return nil, fmt.Errorf("filters[%d]: set at least one of namespace, container, message", i)
		}
		for _, g := range []string{f.Namespace, f.Container} {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("filters[%d]: bad glob %q: %w", i, g, err)
			}
		}
		ru := rule{keep: f.Action == "keep", namespace: f.Namespace, container: f.Container, reason: f.Reason}
		if ru.reason == "" {
			ru.reason = DefaultReason
		}
		if f.Message != "" {
			re, err := regexp.Compile(f.Message)
			if err != nil {
				return nil, fmt.Errorf("filters[%d].message: %w", i, err)
			}
			ru.message = re
		}
		r.filters = append(r.filters, ru)
	}
	for i, rd := range redact {
		re, err := regexp.Compile(rd.Pattern)
		if err != nil {
			return nil, fmt.Errorf("redact[%d].pattern: %w", i, err)
		}
		if rd.Pattern == "" || re.MatchString("") {
			return nil, fmt.Errorf("redact[%d].pattern %q matches the empty string", i, rd.Pattern)
		}
		reason := rd.Reason
		if reason == "" {
			reason = DefaultRedactReason
		}
		r.redact = append(r.redact, redaction{re: re, with: []byte(rd.Replacement), reason: reason})
	}
	return r, nil
}

// sourceMatch caches, for the source of a run of records, which rules' namespace and
// container globs match (the regular expressions run per record).
type sourceMatch struct {
	src  *collector.Source
	kube *collector.Kube
	ok   []bool
}

func (r *Rules) matchSource(m *sourceMatch, src *collector.Source) {
	var k *collector.Kube
	if src != nil {
		k = src.Kube()
	}
	if m.ok != nil && m.src == src && m.kube == k {
		return
	}
	m.src, m.kube = src, k
	m.ok = m.ok[:0]
	var ns, ctr string
	if k != nil {
		ns, ctr = k.Namespace, k.Container
	}
	for _, ru := range r.filters {
		m.ok = append(m.ok, glob(ru.namespace, ns) && glob(ru.container, ctr))
	}
}

func glob(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, s)
	return ok
}

// dropReason returns the reason the record is dropped, "" to keep it.
func (r *Rules) dropReason(m *sourceMatch, rec *collector.Record) string {
	for i, ru := range r.filters {
		match := m.ok[i] && (ru.message == nil || ru.message.Match(rec.Message))
		if match != ru.keep {
			return ru.reason
		}
	}
	return ""
}

// Emitter applies the rules to every batch an input emits.
type Emitter struct {
	next     collector.Emitter
	rules    *Rules
	redacted []prometheus.Counter // per redact rule, by its reason; nil: not counted
	scratch  sync.Pool            // *scratch: inputs may emit from several goroutines (forward connections)
}

type scratch struct {
	batch collector.Batch
	match sourceMatch
	hits  []int // per redact rule, in this batch
}

// NewEmitter wraps next. redacted counts the redactions by the rule's reason, its one label
// (tailgate_input_redactions_total curried with the input); it may be nil.
func NewEmitter(next collector.Emitter, rules *Rules, redacted *prometheus.CounterVec) *Emitter {
	e := &Emitter{next: next, rules: rules}
	if redacted != nil {
		for _, rd := range rules.redact {
			e.redacted = append(e.redacted, redacted.WithLabelValues(rd.reason))
		}
	}
	e.scratch.New = func() any { return new(scratch) }
	return e
}

// Emit drops the records the filters reject (counted per source and reason through Dropped),
// rewrites the messages the redact rules match, and emits the rest with b's positions.
func (e *Emitter) Emit(ctx context.Context, b *collector.Batch) (collector.Durable, error) {
	s := e.scratch.Get().(*scratch)
	defer e.scratch.Put(s)
	out := &s.batch
	out.Records = out.Records[:0]
	out.State = b.State
	var dropSrc *collector.Source
	var dropStream collector.Stream
	dropReason, dropN := "", 0
	flushDrops := func() {
		if dropN > 0 {
			e.next.Dropped(dropSrc, dropStream, dropReason, dropN)
		}
		dropN = 0
	}
	if n := len(e.rules.redact); cap(s.hits) < n {
		s.hits = make([]int, n)
	} else {
		s.hits = s.hits[:n]
		clear(s.hits)
	}
	for i := range b.Records {
		rec := b.Records[i]
		if len(e.rules.filters) > 0 {
			e.rules.matchSource(&s.match, rec.Source)
			if reason := e.rules.dropReason(&s.match, &rec); reason != "" {
				if dropN > 0 && (rec.Source != dropSrc || rec.Stream != dropStream || reason != dropReason) {
					flushDrops()
				}
				dropSrc, dropStream, dropReason = rec.Source, rec.Stream, reason
				dropN++
				continue
			}
		}
		if len(e.rules.redact) > 0 {
			e.redact(&rec, s.hits)
		}
		out.Records = append(out.Records, rec)
	}
	flushDrops()
	for i, c := range e.redacted {
		if s.hits[i] > 0 {
			c.Add(float64(s.hits[i]))
		}
	}
	d, err := e.next.Emit(ctx, out)
	clear(out.Records) // drop the references to the input's memory
	out.State = nil
	return d, err
}

// redact rewrites rec's message (and its fields, when they hold it too) and adds each rule's
// matches (message and fields count apart) to hits. A rule runs its expression only once to
// test, and builds a new message only when it matched.
func (e *Emitter) redact(rec *collector.Record, hits []int) {
	n := 0
	fieldsIsMessage := len(rec.Fields) > 0 && len(rec.Fields) == len(rec.Message) && &rec.Fields[0] == &rec.Message[0]
	msg, fields := rec.Message, rec.Fields
	for i, rd := range e.rules.redact {
		if rd.re.Match(msg) {
			msg = rd.re.ReplaceAll(msg, rd.with)
			hits[i]++
			n++
		}
		if !fieldsIsMessage && len(fields) > 0 && rd.re.Match(fields) {
			fields = rd.re.ReplaceAll(fields, rd.with)
			hits[i]++
			n++
		}
	}
	if n == 0 {
		return
	}
	rec.Message = msg // new memory when a rule matched, else the input's
	switch {
	case fieldsIsMessage:
		// A tailed JSON line: the fields are the message; keep them only while still an object.
		if jsonscan.IsObject(rec.Message, jsonscan.MaxDepth) {
			rec.Fields = rec.Message
		} else {
			rec.Fields = nil
		}
	case len(fields) > 0 && !jsonscan.IsObject(fields, jsonscan.MaxDepth):
		// A rule cut through the JSON, or left a value that is no object (the envelope writes
		// Fields as its "fields" object): the secret must not stay, the fields go.
		rec.Fields = nil
	default:
		rec.Fields = fields
	}
}

// Release and the rest pass through.
func (e *Emitter) Release(src *collector.Source) { e.next.Release(src) }

func (e *Emitter) Dropped(src *collector.Source, st collector.Stream, reason string, n int) {
	e.next.Dropped(src, st, reason, n)
}

func (e *Emitter) Altered(src *collector.Source, st collector.Stream, reason string, n int) {
	e.next.Altered(src, st, reason, n)
}

func (e *Emitter) State() map[string][]byte { return e.next.State() }
