package collector

import (
	"encoding/hex"
	"testing"
)

func FuzzIDAppendHex(f *testing.F) {
	f.Add([]byte{}, uint64(0), uint64(0))
	f.Add([]byte("prefix"), uint64(0xfedcba9876543210), uint64(1))
	f.Add([]byte{0xff}, ^uint64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, prefix []byte, key, pos uint64) {
		id := MakeID(key, pos)
		got := id.AppendHex(prefix)
		want := hex.AppendEncode(append([]byte(nil), prefix...), id[:])
		if string(got) != string(want) {
			t.Fatalf("AppendHex(%q) of %x: got %q, want %q", prefix, id[:], got, want)
		}
	})
}

func TestIDHexEveryByte(t *testing.T) {
	for b := range 256 {
		var id ID
		for i := range id {
			id[i] = byte(b + i)
		}
		if got, want := id.String(), hex.EncodeToString(id[:]); got != want {
			t.Fatalf("byte %#x: %s, want %s", b, got, want)
		}
	}
}
