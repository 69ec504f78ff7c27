package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCtx bounds a test's waits; it is a deadline against hangs, not a timing assertion.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openT(t *testing.T, dir string, opts Options) *Buffer {
	t.Helper()
	b, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func closeT(t *testing.T, b *Buffer) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// payloadN is frame i's payload: unique, of size bytes (at least the label).
func payloadN(i, size int) []byte {
	p := fmt.Appendf(nil, "frame-%06d|", i)
	for len(p) < size {
		p = append(p, byte('a'+i%26))
	}
	return p
}

type appended struct {
	ticket  Ticket
	payload []byte
	count   int
}

func appendN(t *testing.T, b *Buffer, from, n, size int) []appended {
	t.Helper()
	var out []appended
	for i := from; i < from+n; i++ {
		p := payloadN(i, size)
		tk, err := b.Append(context.Background(), p, i%7+1)
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, appended{tk, p, i%7 + 1})
	}
	return out
}

func readN(t *testing.T, r *Reader, n int) []Frame {
	t.Helper()
	ctx := testCtx(t)
	var out []Frame
	for len(out) < n {
		f, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d frames: %v", len(out), n, err)
		}
		out = append(out, f)
	}
	return out
}

func durableT(t *testing.T, b *Buffer, a []appended) {
	t.Helper()
	if len(a) == 0 {
		return
	}
	if err := b.WaitDurable(testCtx(t), a[len(a)-1].ticket); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
}

func checkFrames(t *testing.T, got []Frame, want []appended) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i].payload) || got[i].Count != want[i].count || got[i].End != want[i].ticket.end {
			t.Fatalf("frame %d: got %q count %d end %v, want %q count %d end %v", i,
				trim(got[i].Data), got[i].Count, got[i].End, trim(want[i].payload), want[i].count, want[i].ticket.end)
		}
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 13)] }

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// flipByte xors one byte of a file.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5A
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// expectNoFrame checks that the reader has no durable frame left to return.
func expectNoFrame(t *testing.T, r *Reader) {
	t.Helper()
	if f, err := r.next(context.Background(), false); !errors.Is(err, errNoFrame) {
		t.Fatalf("Next: got frame %q err %v, want nothing", trim(f.Data), err)
	}
}
