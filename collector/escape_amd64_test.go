//go:build amd64 && !purego

package collector

import (
	"bytes"
	"testing"
)

// The Go path alone (a CPU without SSSE3) gives the same bytes.
func TestAppendJSONStringWithoutSSSE3(t *testing.T) {
	if !haveSSSE3 {
		t.Skip("no SSSE3: the Go path is the only one")
	}
	haveSSSE3 = false
	defer func() { haveSSSE3 = true }()
	for _, in := range []string{`{"a":"b\\c"}`, "plain text of some length", "ctl\x01 and é and \xff",
		`""""""""""""""""""`} {
		got := AppendJSONString(nil, []byte(in))
		if want := appendJSONStringRef(nil, []byte(in)); !bytes.Equal(got, want) {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	TestAppendJSONStringWordPatterns(t)
}

func TestEscapeWordsStopsAtOddWord(t *testing.T) {
	src := []byte(`ab"cdefg` + `hijk\lmn` + "op\x01qrstu" + `vwxyz"""`)
	dst := make([]byte, 16*len(src)/8)
	words, n := escapeWords(dst, src)
	if want := `ab\"cdefghijk\\lmn`; words != 2 || string(dst[:n]) != want {
		t.Fatalf("escapeWords: %d words, %q; want 2, %q", words, dst[:n], want)
	}
}
