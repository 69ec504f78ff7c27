package multiline

import (
	"fmt"
	"testing"
)

var (
	benchJSON   = []byte(`{"level":"info","ts":"2026-11-23T03:00:00.123Z","logger":"http","msg":"request completed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","method":"GET","path":"/api/v1/orders/4711","status":200,"latency_ms":12.5}`)
	benchAccess = []byte(`10.1.2.3 - - [23/Nov/2026:03:00:00 +0000] "GET /api/v1/cart/items?id=42 HTTP/1.1" 200 512 "-" "curl/8.5.0" 0.003`)
	benchLogfmt = []byte(`time="2026-11-23T03:00:00Z" level=info msg="request done" path=/api/v1/items status=200 dur=1.2ms`)
)

// BenchmarkFeed is the joiner's cost per line on lines that start nothing (the common case)
// and on a Java trace, with every built-in detector on.
func BenchmarkFeed(b *testing.B) {
	rules, _ := Compile(Config{Detect: []string{"all"}})
	trace := [][]byte{[]byte("java.lang.IllegalStateException: order 4711 in unexpected state")}
	for i := range 20 {
		trace = append(trace, fmt.Appendf(nil, "\tat com.example.shop.OrderService.place(OrderService.java:%d)", 100+i))
	}
	trace = append(trace, benchJSON)
	for _, tc := range []struct {
		name  string
		lines [][]byte
	}{{"json", [][]byte{benchJSON}}, {"access", [][]byte{benchAccess}}, {"logfmt", [][]byte{benchLogfmt}}, {"java-trace", trace}} {
		b.Run(tc.name, func(b *testing.B) {
			j := NewJoiner(rules)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				j.Feed(tc.lines[i%len(tc.lines)])
			}
		})
	}
}

// BenchmarkCustomStart: a custom start rule anchored at the line start ("^\d{4}-\d{2}-\d{2}")
// on lines it cannot match: the first-byte test against the expression alone.
func BenchmarkCustomStart(b *testing.B) {
	m, err := compileMatcher(`^\d{4}-\d{2}-\d{2}`)
	if err != nil || m.first == nil {
		b.Fatal("no first-byte test", err)
	}
	for _, tc := range []struct {
		name string
		line []byte
	}{{"json", benchJSON}, {"access", benchAccess}} {
		b.Run(tc.name+"/first-byte", func(b *testing.B) {
			for b.Loop() {
				m.match(tc.line)
			}
		})
		b.Run(tc.name+"/regexp", func(b *testing.B) {
			for b.Loop() {
				m.re.Match(tc.line)
			}
		})
	}
}
