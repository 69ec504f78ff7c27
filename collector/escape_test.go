package collector

import (
	"bytes"
	"testing"
)

// Every pattern of quotes, backslashes and plain bytes in a word, at every alignment and with
// a control or non-ASCII byte after it, against the byte-at-a-time reference.
func TestAppendJSONStringWordPatterns(t *testing.T) {
	for m := range 1 << 8 {
		for _, other := range []byte{'"', '\\'} {
			word := []byte("abcdefgh")
			for j := range 8 {
				if m&(1<<j) != 0 {
					word[j] = other
				}
			}
			for pre := range 9 {
				for _, tail := range []string{"", "xyzxyzxy", "\x01rest", "é tail", "\xff"} {
					in := append(append(bytes.Repeat([]byte{'p'}, pre), word...), tail...)
					in = append(in, word...)
					got := AppendJSONString([]byte("dst:"), in)
					want := appendJSONStringRef([]byte("dst:"), in)
					if !bytes.Equal(got, want) {
						t.Fatalf("%q: got %q, want %q", in, got, want)
					}
				}
			}
		}
	}
}
