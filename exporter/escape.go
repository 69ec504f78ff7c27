package exporter

import "unicode/utf8"

// appendLabelValue appends v escaped as a label value of the text exposition format (0.0.4):
// backslash, double quote and line feed are escaped. Each run of invalid UTF-8 becomes one
// U+FFFD (as strings.ToValidUTF8 does) because the format is UTF-8.
func appendLabelValue(dst []byte, v string) []byte {
	invalid := false
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			invalid = false
			switch c {
			case '\\':
				dst = append(dst, '\\', '\\')
			case '"':
				dst = append(dst, '\\', '"')
			case '\n':
				dst = append(dst, '\\', 'n')
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			if !invalid {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
			invalid = true
		} else {
			invalid = false
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

// appendHelp appends a HELP text escaped per the text format (backslash and line feed).
func appendHelp(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendPodLabels renders `n1="v1",n2="v2"` (no braces) for parallel names and values, and
// returns the length of the first two (namespace and pod): the pod's prefix.
func appendPodLabels(dst []byte, names []string, values []string) ([]byte, int) {
	start, prefix := len(dst), 0
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, n...)
		dst = append(dst, '=', '"')
		dst = appendLabelValue(dst, values[i])
		dst = append(dst, '"')
		if i == 1 {
			prefix = len(dst) - start
		}
	}
	return dst, prefix
}
