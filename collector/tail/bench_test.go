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

var benchJSONCRI = []byte(`2026-11-23T03:00:00.123456789Z stdout F {"level":"info","ts":"2026-11-23T03:00:00.123Z","logger":"http","msg":"request completed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","method":"GET","path":"/api/v1/orders/4711","status":200,"latency_ms":12.5}`)

// BenchmarkJSONObject is the check a JSON line's message passes before it becomes
// Record.Fields (parse_json): the whole object is validated.
func BenchmarkJSONObject(b *testing.B) {
	msg := benchJSONCRI[40:]
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if !isJSONObject(msg) {
			b.Fatal("not an object")
		}
	}
}

// benchTrace is a Java trace as CRI lines on stderr, with the JSON line that ends it.
var benchTrace = func() [][]byte {
	lines := []string{"java.lang.IllegalStateException: order 4711 in unexpected state"}
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("\tat com.example.shop.OrderService.place(OrderService.java:%d)", 100+i))
	}
	lines = append(lines, "Caused by: java.io.IOException: connection reset", "\tat com.example.Net.read(Net.java:7)", "\t... 21 more")
	var out [][]byte
	for _, l := range lines {
		out = append(out, []byte("2026-11-23T03:00:00.123456789Z stderr F "+l))
	}
	return append(out, []byte("2026-11-23T03:00:00.123456789Z stderr F "+string(benchJSONCRI[40:])))
}()

// BenchmarkHandleLine is the whole per-line path of a reader: parse, join, copy into the batch,
// without and with multiline joining (every built-in detector), on lines that start no trace
// (an access line, a JSON line) and on a Java trace.
func BenchmarkHandleLine(b *testing.B) {
	for _, tc := range []struct {
		name  string
		lines [][]byte
	}{{"cri", [][]byte{benchCRI}}, {"docker", [][]byte{benchDocker}}, {"json", [][]byte{benchJSONCRI}}, {"trace", benchTrace}} {
		for _, ml := range []bool{false, true} {
			name := tc.name
			if ml {
				name += "/multiline"
			}
			b.Run(name, func(b *testing.B) {
				cfg := collector.InputConfig{Name: "pods", Paths: []string{"/x/*.log"}}
				if ml {
					cfg.Multiline.Detect = []string{"all"}
				}
				in, err := New(cfg, "n", nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				r := newReader(in)
				r.out = nopEmitter{}
				s := &stream{path: "/x/a.log"}
				if in.multiline != nil {
					s.held[collector.StreamStdout] = newHeld(in.multiline)
					s.held[collector.StreamStderr] = newHeld(in.multiline)
				}
				f := r.newFile(s, fileID{1, 2}, "/x/a.log", 7, 0)
				var size int
				for _, l := range tc.lines {
					size += len(l) + 1
				}
				b.SetBytes(int64(size / len(tc.lines)))
				b.ReportAllocs()
				var off int64
				for i := 0; b.Loop(); i++ {
					line := tc.lines[i%len(tc.lines)]
					r.handleLine(s, f, line, off, off+int64(len(line))+1, false)
					off += int64(len(line)) + 1
					if len(r.batch.Records) >= flushRecords {
						r.batch.Reset()
						r.arena = r.arena[:0]
					}
				}
			})
		}
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
func (nopEmitter) Altered(*collector.Source, collector.Stream, string, int) {}
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
