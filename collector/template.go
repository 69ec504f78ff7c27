package collector

import (
	"fmt"
	"strings"
)

// TemplateField is what a placeholder of a sink's name template stands for.
type TemplateField uint8

// Template fields. TemplateLiteral is literal text; TemplateLabel is {labels.KEY}.
const (
	TemplateLiteral TemplateField = iota
	TemplateNamespace
	TemplatePod
	TemplatePodUID
	TemplateContainer
	TemplateNode
	TemplateWorkload
	TemplateSource
	TemplateTag
	TemplateStream
	TemplateLabel
)

var templateFields = map[string]TemplateField{
	"namespace": TemplateNamespace,
	"pod":       TemplatePod,
	"pod_uid":   TemplatePodUID,
	"container": TemplateContainer,
	"node":      TemplateNode,
	"workload":  TemplateWorkload,
	"source":    TemplateSource,
	"input":     TemplateSource, // the input's name, as Cloud Logging's log_id first called it
	"tag":       TemplateTag,
	"stream":    TemplateStream,
}

// TemplatePlaceholders lists the placeholders ParseTemplate knows, for error messages and docs.
const TemplatePlaceholders = "{namespace} {pod} {pod_uid} {container} {node} {workload} {source} {tag} {stream} {labels.KEY}"

// TemplatePart is one piece of a parsed template: literal text, or a placeholder with the
// fallback written after a '|' ({labels.app|none}), if any.
type TemplatePart struct {
	Field       TemplateField
	Text        string // the literal, or the label key of {labels.KEY}
	Fallback    string
	HasFallback bool
}

// ParseTemplate splits a sink's name template ("/k8s/{namespace}", "{pod}/{labels.app|none}")
// into literal text and placeholders. The sinks that name destinations from records
// (CloudWatch log groups and streams, Cloud Logging LOG_IDs, Pub/Sub ordering keys) share it,
// so one placeholder means one thing everywhere; each escapes the values its way.
func ParseTemplate(tmpl string) ([]TemplatePart, error) {
	var parts []TemplatePart
	for rest := tmpl; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			parts = append(parts, TemplatePart{Text: rest})
			break
		}
		if open > 0 {
			parts = append(parts, TemplatePart{Text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: unclosed {", tmpl)
		}
		name, fallback, hasFallback := strings.Cut(rest[open+1:open+end], "|")
		p := TemplatePart{Fallback: fallback, HasFallback: hasFallback}
		if label, ok := strings.CutPrefix(name, "labels."); ok && label != "" {
			p.Field, p.Text = TemplateLabel, label
		} else if f, ok := templateFields[name]; ok {
			p.Field = f
		} else {
			return nil, fmt.Errorf("%q: unknown placeholder {%s} (known: %s)", tmpl, name, TemplatePlaceholders)
		}
		parts = append(parts, p)
		rest = rest[open+end+1:]
	}
	return parts, nil
}

// Value returns what placeholder p holds for a record with pod metadata k (nil: none), of
// input and stream st; "" when it has no value (no pod metadata, a pod without the label).
// The tag is bytes on the record: a caller that takes {tag} appends r.Tag itself, without a
// copy.
func (p *TemplatePart) Value(k *Kube, input string, st Stream) string {
	switch p.Field {
	case TemplateLiteral:
		return p.Text
	case TemplateStream:
		return st.String()
	case TemplateSource:
		return input
	case TemplateTag:
		return ""
	}
	if k == nil {
		return ""
	}
	switch p.Field {
	case TemplateNamespace:
		return k.Namespace
	case TemplatePod:
		return k.Pod
	case TemplatePodUID:
		return k.PodUID
	case TemplateContainer:
		return k.Container
	case TemplateNode:
		return k.Node
	case TemplateWorkload:
		return k.Workload
	case TemplateLabel:
		return k.Labels[p.Text]
	}
	return ""
}
