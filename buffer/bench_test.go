package buffer

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAppend: one writer, group commit every 200ms, drop_oldest keeping 256MiB on disk.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			buf, err := Open(b.TempDir(), Options{MaxBytes: 256 << 20, SegmentBytes: 64 << 20,
				Sync: 200 * time.Millisecond, WhenFull: DropOldest})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			p := payloadN(0, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := buf.Append(ctx, p, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReaderNext reads durable frames back (from the page cache) and acks them.
func BenchmarkReaderNext(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			buf, err := Open(b.TempDir(), Options{SegmentBytes: 64 << 20, Sync: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			const frames = 512
			p := payloadN(0, size)
			ctx := context.Background()
			var last Ticket
			for range frames {
				if last, err = buf.Append(ctx, p, 100); err != nil {
					b.Fatal(err)
				}
			}
			if err := buf.syncOnce(); err != nil {
				b.Fatal(err)
			}
			_ = last
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			var r *Reader
			n := 0
			for b.Loop() {
				if n%frames == 0 { // start over with a fresh reader
					b.StopTimer()
					if r != nil {
						_ = buf.RemoveReader(r.name)
					}
					r, _ = buf.Reader(byteSize(n))
					b.StartTimer()
				}
				f, err := r.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				r.Ack(f.End)
				n++
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkAppendWaitDurable is what a forward ack costs: append a small frame, then wait for
// it to be durable, with sync 200ms. Parallel waiters share commits.
func BenchmarkAppendWaitDurable(b *testing.B) {
	buf, err := Open(b.TempDir(), Options{SegmentBytes: 64 << 20, Sync: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	p := payloadN(0, 256)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := buf.Append(ctx, p, 1)
			if err != nil {
				b.Error(err)
				return
			}
			if err := buf.WaitDurable(ctx, t); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := buf.Stats()
	b.ReportMetric(float64(st.WaiterSyncs)/float64(b.N), "fsyncs/op")
}
