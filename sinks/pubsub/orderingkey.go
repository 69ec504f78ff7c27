package pubsub

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// keyTemplate renders ordering keys. A key depends only on a record's source metadata and
// stream, so rendered keys are cached by (metadata version, input, stream): the per-record
// cost is a comparison with the last key asked for (records come in runs of one source), else
// one map lookup, never a string build.
type keyTemplate struct {
	parts []collector.TemplatePart

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

// parseKeyTemplate parses "{namespace}/{pod}" (collector.ParseTemplate's placeholders but
// {tag}: a key is rendered once per source and stream, and the tag is per record); an empty
// template returns nil (no ordering).
func parseKeyTemplate(tmpl string) (*keyTemplate, error) {
	if tmpl == "" {
		return nil, nil
	}
	parts, err := collector.ParseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("ordering_key %w", err)
	}
	for _, p := range parts {
		if p.Field == collector.TemplateTag {
			return nil, fmt.Errorf("ordering_key %q: unknown placeholder {tag} (a key follows the record's source, not its tag)", tmpl)
		}
	}
	return &keyTemplate{parts: parts, cache: make(map[keyCacheKey]*renderedKey)}, nil
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
	for i := range t.parts {
		p := &t.parts[i]
		v := p.Value(ck.kube, ck.input, ck.stream)
		if v == "" {
			v = p.Fallback
		}
		b.WriteString(v)
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
