package pubsub

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// keyField is a placeholder of the ordering key template.
type keyField uint8

const (
	fieldLiteral keyField = iota
	fieldNamespace
	fieldPod
	fieldPodUID
	fieldContainer
	fieldNode
	fieldSource
	fieldStream
)

var keyFields = map[string]keyField{
	"namespace": fieldNamespace,
	"pod":       fieldPod,
	"pod_uid":   fieldPodUID,
	"container": fieldContainer,
	"node":      fieldNode,
	"source":    fieldSource,
	"stream":    fieldStream,
}

type keyPart struct {
	field keyField
	lit   string
}

// keyTemplate renders ordering keys. A key depends only on a record's source metadata and
// stream, so rendered keys are cached by (metadata version, input, stream): the per-record
// cost is a comparison with the last key asked for (records come in runs of one source), else
// one map lookup, never a string build.
type keyTemplate struct {
	parts []keyPart

	last  atomic.Pointer[renderedKey]
	mu    sync.Mutex
	cache map[keyCacheKey]*renderedKey
}

type renderedKey struct {
	ck  keyCacheKey
	key string
}

type keyCacheKey struct {
	kube   *collector.Kube // immutable once published, so the pointer names one version
	input  string
	stream collector.Stream
}

// maxKeyCache bounds the cache; it is dropped and refilled when pods churn past it.
const maxKeyCache = 4096

// parseKeyTemplate parses "{namespace}/{pod}"; an empty template returns nil (no ordering).
func parseKeyTemplate(tmpl string) (*keyTemplate, error) {
	if tmpl == "" {
		return nil, nil
	}
	t := &keyTemplate{cache: make(map[keyCacheKey]*renderedKey)}
	for rest := tmpl; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, keyPart{lit: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, keyPart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("ordering_key %q: unclosed {", tmpl)
		}
		name := rest[open+1 : open+end]
		f, ok := keyFields[name]
		if !ok {
			return nil, fmt.Errorf("ordering_key %q: unknown placeholder {%s}", tmpl, name)
		}
		t.parts = append(t.parts, keyPart{field: f})
		rest = rest[open+end+1:]
	}
	return t, nil
}

// key returns r's ordering key ("" when the template renders nothing).
func (t *keyTemplate) key(r *collector.Record) string {
	ck := keyCacheKey{stream: r.Stream}
	if r.Source != nil {
		ck.kube = r.Source.Kube()
		ck.input = r.Source.Input
	}
	if rk := t.last.Load(); rk != nil && rk.ck == ck {
		return rk.key
	}
	t.mu.Lock()
	rk, ok := t.cache[ck]
	if !ok {
		rk = &renderedKey{ck: ck, key: t.render(ck)}
		if len(t.cache) >= maxKeyCache {
			clear(t.cache)
		}
		t.cache[ck] = rk
	}
	t.mu.Unlock()
	t.last.Store(rk)
	return rk.key
}

func (t *keyTemplate) render(ck keyCacheKey) string {
	var b strings.Builder
	kube := ck.kube
	if kube == nil {
		kube = &collector.Kube{}
	}
	for _, p := range t.parts {
		switch p.field {
		case fieldLiteral:
			b.WriteString(p.lit)
		case fieldNamespace:
			b.WriteString(kube.Namespace)
		case fieldPod:
			b.WriteString(kube.Pod)
		case fieldPodUID:
			b.WriteString(kube.PodUID)
		case fieldContainer:
			b.WriteString(kube.Container)
		case fieldNode:
			b.WriteString(kube.Node)
		case fieldSource:
			b.WriteString(ck.input)
		case fieldStream:
			b.WriteString(ck.stream.String())
		}
	}
	return clampUTF8(b.String(), maxOrderingKeyBytes)
}

// clampUTF8 makes s valid UTF-8 (proto string fields must be) of at most n bytes.
func clampUTF8(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
