//go:build !amd64 || purego

package collector

// escapeWords has no vector version here: AppendJSONString does all the work in Go.
func escapeWords(dst, src []byte) (words, written int) { return 0, 0 }
