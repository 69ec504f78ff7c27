package swar

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestSpecialMask(t *testing.T) {
	for b := 0; b < 256; b++ {
		want := b >= 0x20 && b < 0x80 && b != '"' && b != '\\'
		for pos := 0; pos < 8; pos++ {
			word := []byte("abcdefgh")
			word[pos] = byte(b)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(word[i])
			}
			if got := JSONSpecial(x) == 0; got != want {
				t.Fatalf("byte %#x at %d: specialMask == 0 is %v, want %v", b, pos, got, want)
			}
		}
	}
}

func TestWordMasks(t *testing.T) {
	for b := 0; b < 256; b++ {
		for pos := 0; pos < 8; pos++ {
			word := []byte("abcdefgh")
			word[pos] = byte(b)
			x := binary.LittleEndian.Uint64(word)
			if got, want := HasControlOrHigh(x), b < 0x20 || b >= 0x80; got != want {
				t.Fatalf("byte %#x at %d: hasControlOrHigh %v, want %v", b, pos, got, want)
			}
			if m, want := Control(x), b < 0x20; (m != 0) != want || want && m&-m != 0x80<<(8*pos) {
				t.Fatalf("byte %#x at %d: Control %#x", b, pos, m)
			}
			m := ControlOrHigh(x)
			if want := b < 0x20 || b >= 0x80; (m != 0) != want || want && m&-m != 0x80<<(8*pos) {
				t.Fatalf("byte %#x at %d: ControlOrHigh %#x", b, pos, m)
			}
			for _, fill := range []byte{0, 'a', 0x80, 0xff} {
				w := bytes.Repeat([]byte{fill}, 8)
				w[pos] = byte(b)
				x := binary.LittleEndian.Uint64(w)
				var want uint64
				for i, c := range w {
					if c == 0 {
						want |= 0x80 << (8 * i)
					}
				}
				if got := ZeroBytes(x); got != want {
					t.Fatalf("word % x: zeroBytes %#x, want %#x", w, got, want)
				}
			}
		}
	}
}
