package jsonscan

import (
	"math/bits"

	"github.com/tailgate-dev/tailgate/internal/swar"
)

// Framer finds where one JSON array or object ends in a stream that arrives in pieces (values
// written back to back, as fluent-logger-golang's MarshalAsJSON frames are). It tracks only
// strings and bracket depth, so it costs one quick pass however the value is split; whoever
// decodes the value validates the rest. On a valid value it finds Skip's end.
type Framer struct {
	Max      int // bytes one value may take
	MaxDepth int // brackets one value may nest

	off      int // bytes of the value consumed so far
	depth    int
	inString bool
	escape   bool // inside a string, just after a backslash
}

// Reset starts a new value.
func (f *Framer) Reset() { f.off, f.depth, f.inString, f.escape = 0, 0, false, false }

// bracket flags (the high bit) exactly the bytes of x that are '[', ']', '{' or '}': OR-ing
// 0x20 folds '[' onto '{' and ']' onto '}', and nothing else onto either.
func bracket(x uint64) uint64 {
	y := x | swar.Low*0x20
	return swar.ZeroBytes(y^(swar.Low*'{')) | swar.ZeroBytes(y^(swar.Low*'}'))
}

// Scan is called with the bytes received so far, from the value's first byte, and again with
// more of them until it reports done with the value's length n. It goes on where it stopped.
// TooLarge: the value runs past Max bytes; TooDeep: past MaxDepth brackets; Invalid: a closing
// bracket with none open.
func (f *Framer) Scan(b []byte) (n int, done bool, st Status) {
	lim := min(len(b), f.Max)
	i := f.off
	for i < lim {
		if f.inString {
			if f.escape {
				f.escape = false
				i++
				continue
			}
			for i+8 <= lim {
				x := le64(b, i)
				if m := swar.ZeroBytes(x^(swar.Low*'"')) | swar.ZeroBytes(x^(swar.Low*'\\')); m != 0 {
					i += bits.TrailingZeros64(m) >> 3
					break
				}
				i += 8
			}
			for i < lim && b[i] != '"' && b[i] != '\\' {
				i++
			}
			if i >= lim {
				break
			}
			if b[i] == '\\' {
				f.escape = true
			} else {
				f.inString = false
			}
			i++
			continue
		}
		for i+8 <= lim {
			x := le64(b, i)
			if m := bracket(x) | swar.ZeroBytes(x^(swar.Low*'"')); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < lim {
			switch b[i] {
			case '"':
				f.inString = true
			case '[', '{':
				f.depth++
				if f.depth > f.MaxDepth {
					f.off = i
					return 0, false, TooDeep
				}
			case ']', '}':
				f.depth--
				if f.depth == 0 {
					f.off = i + 1
					return f.off, true, OK
				}
				if f.depth < 0 {
					f.off = i
					return 0, false, Invalid
				}
			default:
				i++
				continue
			}
			i++
			break
		}
	}
	f.off = i
	if lim < len(b) {
		return 0, false, TooLarge
	}
	return 0, false, OK
}
