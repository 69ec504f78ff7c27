package forward

import (
	"strings"
	"testing"

	"github.com/tailgate-dev/tailgate/collector"
)

// benchEntries returns 100 events whose records are about 200 bytes of msgpack.
func benchEntries() [][]byte {
	var es [][]byte
	for i := range 100 {
		rec := record(nil,
			"log", "GET /api/v1/orders/12345 200 "+strings.Repeat("x", 60),
			"level", "info",
			"status", 200+i%5,
			"latency_ms", 12.5,
			"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736",
			"user", "u-000042",
			"ok", true,
		)
		es = append(es, entry(t0, rec, false))
	}
	return es
}

func benchDecode(b *testing.B, frame []byte) {
	d := decoder{src: collector.NewSource(1, "apps", nil), key: 1, maxUnpacked: 64 << 20}
	events := 0
	d.flush = func(batch *collector.Batch) error { events += len(batch.Records); return nil }
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(frame); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

func BenchmarkDecodeForward(b *testing.B) {
	benchDecode(b, forwardFrame("app.web", benchEntries(), option(nil, "Y2h1bmstaWQ=", "size", 100)))
}

func BenchmarkDecodePackedForward(b *testing.B) {
	benchDecode(b, packedFrame("app.web", benchEntries(), option(nil, "Y2h1bmstaWQ=", "size", 100), 0))
}

func BenchmarkDecodeCompressedPackedForward(b *testing.B) {
	benchDecode(b, packedFrame("app.web", benchEntries(), option(nil, "Y2h1bmstaWQ=", "compressed", "gzip"), 1))
}

func BenchmarkMsgpackToJSON(b *testing.B) {
	e := benchEntries()[0]
	rec := e[1+10:] // after the entry header and the EventTime
	var dst []byte
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, _, _, err = appendRecordJSON(dst[:0], rec)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeBigChunkSteadyStateAllocs(t *testing.T) {
	var es [][]byte
	for range 10 {
		es = append(es, benchEntries()...)
	}
	for _, n := range []int{100, 1000} {
		frame := packedFrame("app.web", es[:n], option(nil, "Y2h1bmstaWQ=", "size", n), 0)
		d := decoder{src: collector.NewSource(1, "apps", nil), key: 1, maxUnpacked: 64 << 20}
		d.flush = func(*collector.Batch) error { return nil }
		decode := func() {
			if _, err := d.decode(frame); err != nil {
				t.Fatal(err)
			}
			d.trim() // as conn.next does after every frame
		}
		decode()
		if allocs := testing.AllocsPerRun(20, decode); allocs != 0 {
			t.Errorf("%d events per chunk: %.0f allocations per chunk in steady state, want 0", n, allocs)
		}
	}
}

// BenchmarkDecodeJSONForward is the per-event path of a fluent-logger-golang client with
// MarshalAsJSON (a message-mode frame in JSON): find the frame's end, transcode it to msgpack,
// decode the event. One op is one frame.
func BenchmarkDecodeJSONForward(b *testing.B) {
	frame := []byte(`["app.web",1795402800,{"log":"GET /api/v1/orders/12345 200 ` + strings.Repeat("x", 60) + `","level":"info","status":200,"latency_ms":12.5,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"u-000042","ok":true,"note":"caf\u00e9 \"quoted\"\n"},{"chunk":"anNvbg=="}]`)
	d := decoder{src: collector.NewSource(1, "apps", nil), key: 1, maxUnpacked: 64 << 20}
	d.flush = func(*collector.Batch) error { return nil }
	s := newJSONScanner(1 << 20)
	var buf []byte
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.reset()
		n, done, err := s.scan(frame)
		if err != nil || !done || n != len(frame) {
			b.Fatalf("scan: %d %v %v", n, done, err)
		}
		if buf, _, err = appendJSONAsMsgpack(buf[:0], frame[:n]); err != nil {
			b.Fatal(err)
		}
		if _, err := d.decode(buf); err != nil {
			b.Fatal(err)
		}
		d.trim()
	}
}
