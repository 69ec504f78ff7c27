package cloudwatch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch/cwfake"
)

// benchRecords is one full request of ~250-byte JSON lines of one stream.
func benchRecords() []*collector.Record {
	now := time.Now()
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	line := []byte(`{"level":"info","ts":"2026-11-23T03:00:00.123Z","logger":"http","msg":"request completed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","method":"GET","route":"/api/v1/orders","status":200,"duration_ms":12}`)
	var recs []*collector.Record
	for i := 0; i < 3800; i++ {
		recs = append(recs, &collector.Record{Source: src, Time: now.Add(time.Duration(i) * time.Millisecond).UnixNano(), Message: line})
	}
	return recs
}

// BenchmarkSendNullServer is the sink's whole cost per batch through the SDK (signing, the
// HTTP round trip on loopback) against a server that only reads the body: what the sink can
// push per core, with the server's reading in the same process counted too.
func BenchmarkSendNullServer(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("x-amzn-RequestId", "x")
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	benchSend(b, srv.URL)
}

// BenchmarkSendFake is the same against cwfake, which decodes and checks every event.
func BenchmarkSendFake(b *testing.B) {
	fake := cwfake.New(cwfake.Options{})
	fake.CreateGroup("/k8s/shop", 0)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	benchSend(b, srv.URL)
}

func benchSend(b *testing.B, url string) {
	s, err := New(context.Background(), testConfig(url, func(c *collector.SinkConfig) { c.Insecure = true }), Options{})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords()
	batch := &collector.SinkBatch{Records: recs, Key: "/k8s/shop\x00cart/app"}
	if err := s.Send(context.Background(), batch); err != nil && url != "" {
		// the fake creates the stream on the first Send
		if err := s.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(recs[0].Message) * len(recs)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := s.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time of the whole process (sink, SDK, and the server's side), per record and per GiB
	// of record bytes: steadier than wall time on a shared machine.
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(recs)), "cpu-ns/record")
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(len(recs[0].Message)*len(recs))/(1<<30)), "cpu-s/GiB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
