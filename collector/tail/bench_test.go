package tail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

var (
	benchCRI    = []byte(`2026-11-23T03:00:00.123456789Z stdout F 10.1.2.3 - - [23/Nov/2026:03:00:00 +0000] "GET /api/v1/cart/items?id=42 HTTP/1.1" 200 512 "-" "curl/8.5.0" 0.003`)
	benchDocker = []byte(`{"log":"10.1.2.3 - - [23/Nov/2026:03:00:00 +0000] \"GET /api/v1/cart/items?id=42 HTTP/1.1\" 200 512 \"-\" \"curl/8.5.0\" 0.003\n","stream":"stdout","time":"2026-11-23T03:00:00.123456789Z"}`)
)

func BenchmarkParseCRI(b *testing.B) {
	b.SetBytes(int64(len(benchCRI)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseCRI(benchCRI); !ok {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkParseDocker(b *testing.B) {
	var p dockerParser
	b.SetBytes(int64(len(benchDocker)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.parse(benchDocker); !ok {
			b.Fatal("parse failed")
		}
	}
}

// BenchmarkHandleLine is the whole per-line path of a reader: parse, join, copy into the batch.
func BenchmarkHandleLine(b *testing.B) {
	for _, tc := range []struct {
		name string
		line []byte
	}{{"cri", benchCRI}, {"docker", benchDocker}} {
		b.Run(tc.name, func(b *testing.B) {
			in, err := New(collector.InputConfig{Name: "pods", Paths: []string{"/x/*.log"}}, "n", nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			r := newReader(in)
			r.out = nopEmitter{}
			s := &stream{path: "/x/a.log"}
			f := r.newFile(s, fileID{1, 2}, "/x/a.log", 7, 0)
			b.SetBytes(int64(len(tc.line)))
			b.ReportAllocs()
			var off int64
			for b.Loop() {
				r.handleLine(s, f, tc.line, off, off+int64(len(tc.line))+1, false)
				off += int64(len(tc.line)) + 1
				if len(r.batch.Records) >= flushRecords {
					r.batch.Reset()
					r.arena = r.arena[:0]
				}
			}
		})
	}
}

type nopEmitter struct{ records *atomic.Int64 }

func (e nopEmitter) Emit(_ context.Context, b *collector.Batch) (collector.Durable, error) {
	if e.records != nil {
		e.records.Add(int64(len(b.Records)))
	}
	return durableNow{}, nil
}
func (nopEmitter) Release(*collector.Source)                                {}
func (nopEmitter) Dropped(*collector.Source, collector.Stream, string, int) {}
func (nopEmitter) State() map[string][]byte                                 { return nil }

// BenchmarkTailTree tails a generated ~50 MiB tree (100 pods, CRI and docker) to the end
// through a no-op emitter; MB/s is the input's read-parse-batch throughput.
func BenchmarkTailTree(b *testing.B) {
	dir := b.TempDir()
	const pods, size = 100, 512 << 10
	var total, lines int64
	for i := range pods {
		line := benchCRI
		if i%2 == 1 {
			line = benchDocker
		}
		n := size / (len(line) + 1)
		content := strings.Repeat(string(line)+"\n", n)
		p := filepath.Join(dir, "pods", fmt.Sprintf("ns_pod%d_uid", i), "c", "0.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(content))
		lines += int64(n)
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		in, err := New(collector.InputConfig{Name: "pods", Paths: []string{filepath.Join(dir, "pods", "*", "*", "*.log")},
			PollInterval: collector.Duration(10 * time.Millisecond)}, "n", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx, nopEmitter{&got}) }()
		for got.Load() < lines {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
