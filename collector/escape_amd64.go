//go:build amd64 && !purego

package collector

import "golang.org/x/sys/cpu"

// escapeWordsSSSE3 escapes up to n 8-byte words of src into dst, one PSHUFB per word: a
// table indexed by the word's quote-and-backslash mask spreads its bytes apart and another
// puts the backslashes in the gaps, whatever the number of quotes. It stops before the first
// word holding a control or non-ASCII byte, and returns the words it consumed and the bytes
// it wrote. dst must have room for 16 bytes per word.
//
//go:noescape
func escapeWordsSSSE3(dst, src *byte, n int, tables *escapeTables) (words, written int)

// escapeTables are the per-mask tables of escapeWordsSSSE3.
type escapeTables struct {
	shuffle [256][16]byte // PSHUFB control: output byte -> input byte, 0x80 for a gap
	slashes [256][16]byte // '\\' in the gaps
	length  [256]byte     // 8 + the number of gaps
}

var (
	haveSSSE3 = cpu.X86.HasSSSE3
	escTables = newEscapeTables()
)

func newEscapeTables() *escapeTables {
	t := &escapeTables{}
	for m := range 256 {
		p := 0
		for j := range 8 {
			if m&(1<<j) != 0 {
				t.shuffle[m][p], t.slashes[m][p] = 0x80, '\\'
				p++
			}
			t.shuffle[m][p] = byte(j)
			p++
		}
		for ; p < 16; p++ {
			t.shuffle[m][p] = 0x80
		}
		t.length[m] = byte(8 + popcount8(m))
	}
	return t
}

func popcount8(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// escapeWords is escapeWordsSSSE3 where the CPU has it; it reports 0, 0 otherwise.
func escapeWords(dst, src []byte) (words, written int) {
	n := len(src) / 8
	if !haveSSSE3 || n == 0 {
		return 0, 0
	}
	return escapeWordsSSSE3(&dst[0], &src[0], n, escTables)
}
