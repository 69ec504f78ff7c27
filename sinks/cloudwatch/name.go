package cloudwatch

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// DefaultFallback replaces a placeholder whose value is empty (a forward record without a
// pod, a pod without the label), unless the template names its own: {labels.app|none}.
const DefaultFallback = "unknown"

// maxNameBytes is CloudWatch's limit on log group and log stream names.
const maxNameBytes = 512

// nameTemplate renders a log group or log stream name from a record (collector.ParseTemplate's
// placeholders). Rendering appends into the caller's buffer and allocates nothing: it runs for
// every record (Keyer.AppendKey).
type nameTemplate struct {
	parts []collector.TemplatePart
	group bool // log group names allow fewer characters than stream names
}

// parseNameTemplate parses "/k8s/{namespace}" or "{pod}/{labels.app|none}".
func parseNameTemplate(key, tmpl string, group bool) (*nameTemplate, error) {
	if tmpl == "" {
		return nil, fmt.Errorf("%s: empty template", key)
	}
	parts, err := collector.ParseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s %w", key, err)
	}
	for i := range parts {
		if parts[i].Field != collector.TemplateLiteral && !parts[i].HasFallback {
			parts[i].Fallback = DefaultFallback
		}
	}
	return &nameTemplate{parts: parts, group: group}, nil
}

// appendName appends r's name to dst: placeholders filled (or their fallback), characters
// CloudWatch refuses replaced by '_', cut to 512 bytes on a character boundary, and never
// empty.
func (t *nameTemplate) appendName(dst []byte, r *collector.Record) []byte {
	start := len(dst)
	var kube *collector.Kube
	input := ""
	if r.Source != nil {
		kube, input = r.Source.Kube(), r.Source.Input
	}
	for i := range t.parts {
		p := &t.parts[i]
		if p.Field == collector.TemplateTag && len(r.Tag) > 0 {
			dst = appendSafe(dst, r.Tag, t.group)
			continue
		}
		v := p.Value(kube, input, r.Stream)
		if v == "" {
			v = p.Fallback
		}
		dst = appendSafe(dst, v, t.group)
	}
	if len(dst)-start > maxNameBytes {
		n := start + maxNameBytes
		for n > start && !utf8.RuneStart(dst[n]) {
			n--
		}
		dst = dst[:n]
	}
	if len(dst) == start {
		dst = append(dst, '_')
	}
	return dst
}

// appendSafe appends s with the characters a name may not hold replaced by '_'. Log group
// names take [A-Za-z0-9_/.#-]; stream names take anything but ':' and '*' (and, here, control
// characters and invalid UTF-8, which would make the key ambiguous or the request invalid).
func appendSafe[S ~string | ~[]byte](dst []byte, s S, group bool) []byte {
	ok := &nameASCII[0]
	if group {
		ok = &nameASCII[1]
	}
	i := 0
	for i < len(s) && ok[s[i]] {
		i++
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if ok[c] {
				dst = append(dst, c)
			} else {
				dst = append(dst, '_')
			}
			i++
			continue
		}
		var buf [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(buf[:copy(buf[:], s[i:])])
		if group || r == utf8.RuneError && size == 1 {
			dst = append(dst, '_')
		} else {
			dst = append(dst, buf[:size]...)
		}
		i += size
	}
	return dst
}

// nameASCII[0] holds the ASCII bytes a stream name may hold as they are, nameASCII[1] those
// of a group name; bytes of multi-byte characters are false in both.
var nameASCII = func() (t [2][256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[0][c] = c != ':' && c != '*'
		t[1][c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '/' || c == '.' || c == '#'
	}
	return t
}()

// keySep separates the group from the stream in a destination key; neither name can hold it.
const keySep = 0

// appendKey appends the destination key of r: group, a zero byte, stream.
func appendKey(dst []byte, group, stream *nameTemplate, r *collector.Record) []byte {
	dst = group.appendName(dst, r)
	dst = append(dst, keySep)
	return stream.appendName(dst, r)
}

// splitKey returns the group and stream of a key made by appendKey.
func splitKey(key string) (group, stream string, ok bool) {
	return strings.Cut(key, "\x00")
}
