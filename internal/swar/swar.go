// Package swar holds the word-at-a-time ("SIMD within a register") byte tests that the JSON
// escapers and scanners use to skip eight plain bytes at once.
package swar

const (
	// Low has the lowest bit of every byte set; High the highest.
	Low  = 0x0101010101010101
	High = 0x8080808080808080
)

// JSONSpecial flags (the high bit of the byte) the bytes of the little-endian word x that a
// JSON string writer or scanner must look at: < 0x20, '"', '\\' and >= 0x80. The zero tests
// may flag a byte above a true hit, never below one, so the lowest flag is exact.
func JSONSpecial(x uint64) uint64 {
	ctl := (x - Low*0x20) &^ x
	q := x ^ (Low * '"')
	bs := x ^ (Low * '\\')
	quote := (q - Low) &^ q
	slash := (bs - Low) &^ bs
	return (ctl | quote | slash | x) & High
}

// Control flags (the high bit) the bytes of x that are < 0x20. It may flag a byte above a
// true hit, never below one, so the lowest flag is exact.
func Control(x uint64) uint64 {
	return (x - Low*0x20) &^ x & High
}

// ZeroBytes flags (the high bit) exactly the zero bytes of x: no carry crosses a byte.
func ZeroBytes(x uint64) uint64 {
	return ^(((x &^ High) + (High - Low)) | x) & High
}

// ControlOrHigh flags (the high bit) the bytes of x that are < 0x20 or >= 0x80. It may flag a
// byte above a true hit, never below one, so the lowest flag is exact and it is zero exactly
// when no byte is either.
func ControlOrHigh(x uint64) uint64 {
	return ((x-Low*0x20)&^x | x) & High
}

// HasControlOrHigh reports whether any byte of x is < 0x20 or >= 0x80. The zero test's false
// flags only sit above a true one, so the answer to "any" is exact.
func HasControlOrHigh(x uint64) bool {
	return ((x-Low*0x20)&^x|x)&High != 0
}
