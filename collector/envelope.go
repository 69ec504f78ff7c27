package collector

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/internal/civil"
	"github.com/tailgate-dev/tailgate/internal/swar"
)

// AppendJSON appends r as one envelope object (the DESIGN.md record contract), without a
// trailing newline. It allocates nothing: the kubernetes object is rendered once per source.
// Invalid UTF-8 in the message is written as U+FFFD so the output is always valid JSON.
// Sinks that encode many records use an Encoder, which also caches the formatted second.
func (r *Record) AppendJSON(dst []byte) []byte {
	var e Encoder
	return e.AppendJSON(dst, r)
}

// Encoder writes envelopes; it remembers the last formatted second, since the records of a
// batch mostly share it. The zero value is ready; one Encoder per goroutine.
type Encoder struct {
	sec     int64
	secText []byte // "2026-11-23T03:00:00." for sec
}

// AppendJSON is Record.AppendJSON with the encoder's cache.
func (e *Encoder) AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"id":"`...)
	dst = r.ID.AppendHex(dst)
	dst = append(dst, `","time":"`...)
	dst = e.appendTime(dst, r.Time)
	dst = append(dst, `","stream":"`...)
	dst = append(dst, r.Stream.String()...)
	dst = append(dst, `","message":`...)
	dst = AppendJSONString(dst, r.Message)
	dst = append(dst, `,"source":`...)
	input := ""
	var kube []byte
	if r.Source != nil {
		input = r.Source.Input
		kube = r.Source.view().json
	}
	dst = appendJSONStringS(dst, input)
	dst = append(dst, `,"tag":`...)
	dst = AppendJSONString(dst, r.Tag)
	dst = append(dst, `,"kubernetes":`...)
	if kube == nil {
		dst = append(dst, `{}`...)
	} else {
		dst = append(dst, kube...)
	}
	dst = append(dst, `,"fields":`...)
	if len(r.Fields) == 0 {
		dst = append(dst, `{}`...)
	} else {
		dst = append(dst, r.Fields...)
	}
	return append(dst, '}')
}

// appendKubeJSON renders the kubernetes object once per metadata version; labels are sorted so
// the same pod always renders the same bytes.
func appendKubeJSON(dst []byte, k *Kube) []byte {
	dst = append(dst, `{"namespace":`...)
	dst = appendJSONStringS(dst, k.Namespace)
	dst = append(dst, `,"pod":`...)
	dst = appendJSONStringS(dst, k.Pod)
	dst = append(dst, `,"pod_uid":`...)
	dst = appendJSONStringS(dst, k.PodUID)
	dst = append(dst, `,"container":`...)
	dst = appendJSONStringS(dst, k.Container)
	dst = append(dst, `,"node":`...)
	dst = appendJSONStringS(dst, k.Node)
	if k.Workload != "" {
		dst = append(dst, `,"workload":`...)
		dst = appendJSONStringS(dst, k.Workload)
		dst = append(dst, `,"workload_kind":`...)
		dst = appendJSONStringS(dst, k.WorkloadKind)
	}
	if k.Image != "" {
		dst = append(dst, `,"image":`...)
		dst = appendJSONStringS(dst, k.Image)
	}
	dst = append(dst, `,"labels":`...)
	dst = appendJSONMap(dst, k.Labels)
	if len(k.Annotations) > 0 {
		dst = append(dst, `,"annotations":`...)
		dst = appendJSONMap(dst, k.Annotations)
	}
	return append(dst, '}')
}

// appendJSONMap appends m as a JSON object with sorted keys (stable output for tests and
// for dedup by content).
func appendJSONMap(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, key := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStringS(dst, key)
		dst = append(dst, ':')
		dst = appendJSONStringS(dst, m[key])
	}
	return append(dst, '}')
}

// safeASCII[b] is true for bytes that are copied into a JSON string as they are.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Invalid UTF-8 becomes U+FFFD.
//
// Log lines are often JSON themselves, so quotes come every few bytes: a word holding only
// plain bytes and quotes or backslashes is written as 8-byte stores of the runs between them,
// without looking at its bytes one by one (on amd64, one PSHUFB per word: escape_amd64.s).
// Plain words are stored eight bytes at a time, into room reserved up front for the worst
// case of those paths.
func AppendJSONString(dst, s []byte) []byte {
	o := len(dst)
	out := slices.Grow(dst, 2*len(s)+2+8)[:o+2*len(s)+2+8]
	out[o] = '"'
	o++
	i := 0
	for i+8 <= len(s) {
		if words, n := escapeWords(out[o:], s[i:]); words > 0 {
			o, i = o+n, i+8*words
			continue
		}
		w := binary.LittleEndian.Uint64(s[i:])
		odd := swar.ControlOrHigh(w)
		qm := swar.ZeroBytes(w^(swar.Low*'"')) | swar.ZeroBytes(w^(swar.Low*'\\'))
		if odd == 0 {
			// Plain bytes, quotes and backslashes: store the runs between the quotes and
			// backslashes with a backslash inserted before each.
			prev := 0
			for qm != 0 {
				p := bits.TrailingZeros64(qm) >> 3
				qm &= qm - 1
				binary.LittleEndian.PutUint64(out[o:], w>>(8*prev))
				o += p - prev
				out[o] = '\\'
				o++
				prev = p
			}
			binary.LittleEndian.PutUint64(out[o:], w>>(8*prev))
			o, i = o+8-prev, i+8
			continue
		}
		// A control byte or non-ASCII: copy up to the first special (the lowest flag of odd
		// is exact, and those of qm all are).
		k := bits.TrailingZeros64(odd|qm) >> 3
		binary.LittleEndian.PutUint64(out[o:], w)
		o, i = o+k, i+k
		out, o, i = appendSpecial(out, o, s, i)
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf && safeASCII[c] {
			out[o] = c
			o, i = o+1, i+1
			continue
		}
		out, o, i = appendSpecial(out, o, s, i)
	}
	out[o] = '"'
	return out[:o+1]
}

// appendSpecial writes the escape of the byte or rune at s[i] at out[o] and returns where both
// continue. It keeps room for the rest of s at two bytes per byte plus the 8-byte slack, which
// only the six-byte escapes (\u00XX for control bytes, \ufffd for an invalid byte) can eat into.
func appendSpecial(out []byte, o int, s []byte, i int) ([]byte, int, int) {
	if room := 6 + 2*(len(s)-i-1) + 1 + 8; len(out)-o < room {
		out = slices.Grow(out[:o], room)[:o+room]
	}
	b := s[i]
	if b < utf8.RuneSelf {
		switch b {
		case '"', '\\':
			out[o], out[o+1] = '\\', b
			return out, o + 2, i + 1
		case '\n':
			out[o], out[o+1] = '\\', 'n'
			return out, o + 2, i + 1
		case '\r':
			out[o], out[o+1] = '\\', 'r'
			return out, o + 2, i + 1
		case '\t':
			out[o], out[o+1] = '\\', 't'
			return out, o + 2, i + 1
		}
		o += copy(out[o:], `\u00`)
		out[o], out[o+1] = hexDigits[b>>4], hexDigits[b&0xF]
		return out, o + 2, i + 1
	}
	r, size := utf8.DecodeRune(s[i:])
	if r == utf8.RuneError && size == 1 {
		return out, o + copy(out[o:], `\ufffd`), i + 1
	}
	return out, o + copy(out[o:], s[i:i+size]), i + size
}

func appendJSONStringS(dst []byte, s string) []byte {
	// The conversion does not allocate: the compiler sees the slice does not escape.
	return AppendJSONString(dst, []byte(s))
}

func (e *Encoder) appendTime(dst []byte, t int64) []byte {
	sec, nanos := t/1e9, t%1e9
	if nanos < 0 {
		sec, nanos = sec-1, nanos+1e9
	}
	if e.secText == nil || sec != e.sec {
		e.sec = sec
		e.secText = AppendTime(e.secText[:0], sec*1e9)
		e.secText = e.secText[:len(e.secText)-len("000000000Z")]
	}
	dst = append(dst, e.secText...)
	dst = appendDigits(dst, nanos, 9)
	return append(dst, 'Z')
}

// AppendTime appends t (Unix nanoseconds) as RFC 3339 UTC with nine fractional digits, e.g.
// 2026-11-23T03:00:00.123456789Z. Fixed width keeps it sortable and cheap to write.
func AppendTime(dst []byte, t int64) []byte {
	secs := t / 1e9
	nanos := t % 1e9
	if nanos < 0 {
		nanos += 1e9
		secs--
	}
	days := secs / 86400
	rem := secs % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civil.FromDays(days)
	if y < 0 || y > 9999 {
		// Out of the RFC 3339 range; clamp rather than write an invalid timestamp.
		return append(dst, "0001-01-01T00:00:00.000000000Z"...)
	}
	dst = appendDigits(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int64(m), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, int64(d), 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, rem/3600, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, rem/60%60, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, rem%60, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, nanos, 9)
	return append(dst, 'Z')
}

func appendDigits(dst []byte, v int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for ; width > 0 || v > 0; width-- {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[i:]...)
}
