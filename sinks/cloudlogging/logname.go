package cloudlogging

import (
	"fmt"

	"github.com/tailgate-dev/tailgate/collector"
)

// maxLogIDBytes: a LOG_ID must be under 512 characters.
const maxLogIDBytes = 511

// logIDTemplate renders a record's LOG_ID from the log_id setting: literal text and the
// placeholders of collector.ParseTemplate ({container}, {stream}, {namespace}, {tag},
// {labels.KEY|fallback}, ...). The empty template is GKE's own naming: "stdout" or "stderr"
// for container logs, so saved queries on logName keep working, and the forward tag (or the
// input's name) for forward records.
type logIDTemplate struct {
	parts []collector.TemplatePart
}

func parseLogIDTemplate(s string) (*logIDTemplate, error) {
	parts, err := collector.ParseTemplate(s)
	if err != nil {
		return nil, fmt.Errorf("log_id %w", err)
	}
	return &logIDTemplate{parts: parts}, nil
}

// appendLogID appends r's LOG_ID, made valid: characters the API does not take in a LOG_ID
// (anything but letters, digits, '/', '_', '-', '.') become '_', and it is cut to 511 bytes.
// A placeholder without a value renders its fallback, or nothing; a template that renders
// empty falls back to GKE's naming.
func (t *logIDTemplate) appendLogID(dst []byte, r *collector.Record) []byte {
	start := len(dst)
	if len(t.parts) > 0 {
		var k *collector.Kube
		input := ""
		if r.Source != nil {
			k, input = r.Source.Kube(), r.Source.Input
		}
		for i := range t.parts {
			p := &t.parts[i]
			if p.Field == collector.TemplateTag && len(r.Tag) > 0 {
				dst = appendLogIDText(dst, r.Tag)
				continue
			}
			v := p.Value(k, input, r.Stream)
			if v == "" {
				v = p.Fallback
			}
			dst = appendLogIDText(dst, v)
		}
	}
	if len(dst) == start {
		dst = appendGKELogID(dst, r)
	}
	if len(dst)-start > maxLogIDBytes {
		dst = dst[:start+maxLogIDBytes]
	}
	return dst
}

// appendGKELogID is the GKE agent's log name: the stream of a container log, else the tag.
func appendGKELogID(dst []byte, r *collector.Record) []byte {
	switch {
	case r.Stream == collector.StreamStdout || r.Stream == collector.StreamStderr:
		return append(dst, r.Stream.String()...)
	case len(r.Tag) > 0:
		return appendLogIDText(dst, r.Tag)
	case r.Source != nil && r.Source.Input != "":
		return appendLogIDText(dst, r.Source.Input)
	}
	return append(dst, "tailgate"...)
}

func logIDByte(c byte) byte {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '/' || c == '_' || c == '-' || c == '.' {
		return c
	}
	return '_'
}

func appendLogIDText[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, logIDByte(s[i]))
	}
	return dst
}

// appendLogName appends projects/{project}/logs/{logID}, with the LOG_ID URL-encoded (its
// only character that needs it is '/').
func appendLogName(dst []byte, project string, logID []byte) []byte {
	dst = append(dst, "projects/"...)
	dst = append(dst, project...)
	dst = append(dst, "/logs/"...)
	for _, c := range logID {
		if c == '/' {
			dst = append(dst, "%2F"...)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

var emptyKube collector.Kube

// kubeOf returns r's metadata, or an empty Kube.
func kubeOf(r *collector.Record) *collector.Kube {
	if r.Source != nil {
		if k := r.Source.Kube(); k != nil {
			return k
		}
	}
	return &emptyKube
}
