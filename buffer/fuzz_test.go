package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// FuzzDecodeFrame: arbitrary bytes never panic the frame decoder or the segment scanner, and
// whatever decodes re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("payload"), 40)} {
		buf := make([]byte, frameHeaderSize+len(p))
		copy(buf[frameHeaderSize:], p)
		putHeader(buf, header{kind: KindData, length: uint32(len(p)), count: 3, time: 1700000000e9}, payloadCRC(p))
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, reason := decodeFrame(data)
		if reason == "" {
			again := make([]byte, frameHeaderSize+len(payload))
			copy(again[frameHeaderSize:], payload)
			putHeader(again, h, payloadCRC(payload))
			if !bytes.Equal(again, data[:len(again)]) {
				t.Fatalf("re-encoded frame differs")
			}
		}
		seg := make([]byte, segmentHeaderSize+len(data))
		putSegmentHeader(seg, 1)
		copy(seg[segmentHeaderSize:], data)
		sc, err := scanSegment(bytes.NewReader(seg), "fuzz", 1, int64(len(seg)))
		if err != nil {
			t.Fatal(err)
		}
		if sc.validEnd > int64(len(seg)) || sc.validEnd < segmentHeaderSize {
			t.Fatalf("validEnd %d outside the segment of %d bytes", sc.validEnd, len(seg))
		}
		if reason == "" && sc.frames == 0 {
			t.Fatalf("scan missed the frame at the start")
		}
	})
}

// FuzzRecovery mutates bytes of a valid buffer (each 3 input bytes: a 16-bit position in the
// concatenated segment files, and an xor mask), then opens it and reads everything. It must not
// panic and must deliver every frame whose bytes were not touched, in order.
func FuzzRecovery(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x40, 0x00, 0xff})
	f.Add([]byte{0x10, 0x00, 0x01, 0x34, 0x02, 0x80})
	f.Add([]byte{0x14, 0x00, 0x10, 0x14, 0x04, 0x10, 0x14, 0x08, 0x10})
	// One pristine buffer, copied into a fresh dir for every input.
	pristine := f.TempDir()
	opts := Options{SegmentBytes: 4 << 10, Checkpoint: func() []byte { return []byte("checkpoint") }}
	b, err := Open(pristine, opts)
	if err != nil {
		f.Fatal(err)
	}
	var want []appended
	for i := range 24 {
		p := payloadN(i, 50+(i*397)%900)
		tk, err := b.Append(context.Background(), p, 1)
		if err != nil {
			f.Fatal(err)
		}
		want = append(want, appended{tk, p, 1})
	}
	if err := b.Close(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, muts []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "segments"), 0o755); err != nil {
			t.Fatal(err)
		}
		segs, err := filepath.Glob(filepath.Join(pristine, "segments", "*.seg"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(segs)
		for i, p := range segs {
			segs[i] = filepath.Join(dir, "segments", filepath.Base(p))
			data, err := os.ReadFile(p)
			if err == nil {
				err = os.WriteFile(segs[i], data, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}

		// Lay the segment files end to end and apply the mutations.
		type file struct {
			path  string
			id    uint64
			start int64
			data  []byte
		}
		var files []file
		var total int64
		for _, p := range segs {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := parseSegmentName(filepath.Base(p))
			files = append(files, file{p, id, total, data})
			total += int64(len(data))
		}
		touched := map[uint64][]int64{} // segment -> mutated offsets
		for ; len(muts) >= 3; muts = muts[3:] {
			pos := int64(binary.LittleEndian.Uint16(muts)) % total
			if muts[2] == 0 {
				continue
			}
			for i := range files {
				fl := &files[i]
				if pos >= fl.start && pos < fl.start+int64(len(fl.data)) {
					fl.data[pos-fl.start] ^= muts[2]
					touched[fl.id] = append(touched[fl.id], pos-fl.start)
				}
			}
		}
		for _, fl := range files {
			if err := os.WriteFile(fl.path, fl.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		b = openT(t, dir, opts)
		defer closeT(t, b)
		if err := b.Recover(func(Kind, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		r, err := b.Reader("r")
		if err != nil {
			t.Fatal(err)
		}
		sentinel := []byte("sentinel")
		if _, err := b.Append(context.Background(), sentinel, 1); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for {
			fr, err := r.Next(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(fr.Data, sentinel) {
				break
			}
			got = append(got, fr.Data)
		}
		index := map[string]int{}
		for i, a := range want {
			index[string(a.payload)] = i
		}
		seen := map[int]bool{}
		last := -1
		for _, g := range got {
			i, ok := index[string(g)]
			if !ok || i <= last {
				t.Fatalf("delivered %q out of order or never appended", trim(g))
			}
			seen[i], last = true, i
		}
		for i, a := range want {
			start := a.ticket.end.Offset - frameHeaderSize - int64(len(a.payload))
			intact := true
			for _, off := range touched[a.ticket.end.Segment] {
				if off >= start && off < a.ticket.end.Offset {
					intact = false
				}
			}
			if intact && !seen[i] {
				t.Fatalf("untouched frame %q lost", trim(a.payload))
			}
		}
	})
}
