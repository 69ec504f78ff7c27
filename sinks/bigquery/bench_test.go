package bigquery

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailgate-dev/tailgate/collector"
)

// benchEnvelopes returns n distinct envelopes made by the collector's encoder from records
// with a 60-byte message (a ~250-byte envelope, as the Pub/Sub sink benchmark sends), and
// their mean size.
func benchEnvelopes(n int) ([][]byte, int) {
	src := collector.NewSource(7, "pods", &collector.Kube{
		Namespace: "shop", Pod: "cart-7d9f", PodUID: "0b6c", Container: "app", Node: "n1",
		Labels: map[string]string{"app": "cart"},
	})
	var enc collector.Encoder
	out := make([][]byte, n)
	total := 0
	for i := range out {
		msg := fmt.Sprintf("bench %d ", i)
		msg += strings.Repeat("x", max(0, 60-len(msg)))
		r := &collector.Record{
			Source:  src,
			Time:    time.Date(2026, 11, 23, 3, 0, 0, i, time.UTC).UnixNano(),
			ID:      collector.MakeID(5, uint64(i)),
			Stream:  collector.StreamStdout,
			Message: []byte(msg),
		}
		out[i] = enc.AppendJSON(nil, r)
		total += len(out[i])
	}
	return out, total / n
}

// loadStats measures a load of rows envelopes of envBytes each: rows/s, CPU seconds (user +
// system, the whole process: loader, client libraries and in-process fakes) per GiB of
// envelopes, the peak of live heap objects sampled every 10ms, and the process's peak RSS.
type loadStats struct {
	b        *testing.B
	start    time.Time
	cpu      syscall.Rusage
	stop     chan struct{}
	done     chan struct{}
	peakHeap uint64
}

func startLoadStats(b *testing.B) *loadStats {
	runtime.GC()
	s := &loadStats{b: b, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			s.peakHeap = max(s.peakHeap, sample[0].Value.Uint64())
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	syscall.Getrusage(syscall.RUSAGE_SELF, &s.cpu)
	b.ReportAllocs()
	b.ResetTimer()
	s.start = time.Now()
	return s
}

func (s *loadStats) finish(rows, envBytes int) {
	elapsed := time.Since(s.start)
	s.b.StopTimer()
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	close(s.stop)
	<-s.done
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()) -
		time.Duration(s.cpu.Utime.Nano()+s.cpu.Stime.Nano())
	gib := float64(rows) * float64(envBytes) / (1 << 30)
	s.b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	s.b.ReportMetric(cpu.Seconds()/gib, "cpu-s/GiB")
	s.b.ReportMetric(float64(s.peakHeap)/(1<<20), "peak-heap-MiB")
	s.b.ReportMetric(float64(after.Maxrss)/(1<<10), "maxrss-MiB")
}

// runLoader runs a Loader from the subscription behind psOpts into the counting fake until it
// appended b.N rows, and reports the load's figures.
func runLoader(b *testing.B, psOpts []option.ClientOption, fw *fakeWrite, storage []option.ClientOption, envBytes int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := NewLoader(ctx, LoaderOptions{
		Project: project, Subscription: "loader", Dataset: "d", Table: "t",
		PubSubOptions: psOpts, StorageOptions: storage,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	st := startLoadStats(b)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitRows(b, fw, b.N)
	st.finish(b.N, envBytes)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// waitRows polls the fake until it counted n rows.
func waitRows(b *testing.B, fw *fakeWrite, n int) {
	deadline := time.Now().Add(10 * time.Minute)
	for fw.rowCount.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %d of %d rows appended", fw.rowCount.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkLoader runs the real Loader end to end: pstest pre-filled with b.N envelopes,
// the loader pulling them with the Pub/Sub client, and an in-process Storage Write fake that
// counts rows. One op is one row, appended and acked.
//
//	go test -run '^$' -bench 'Loader$' -benchtime 20000x ./sinks/bigquery/
func BenchmarkLoader(b *testing.B) {
	ps := startPubSub(b)
	fw, storage := startCountingWrite(b)
	envs, envBytes := benchEnvelopes(1000)
	topic := topicName(project, "logs")
	for i := range b.N {
		ps.srv.Publish(topic, envs[i%len(envs)], nil)
	}
	runLoader(b, ps.opts, fw, storage, envBytes)
}

// BenchmarkLoaderPullFake is BenchmarkLoader with pstest replaced by pullFake, which
// delivers as fast as the Pub/Sub client takes messages: the loader and both client
// libraries at speed, with the loader's default flow control and batching.
//
//	go test -run '^$' -bench 'LoaderPullFake$' -benchtime 1000000x ./sinks/bigquery/
func BenchmarkLoaderPullFake(b *testing.B) {
	envs, envBytes := benchEnvelopes(1000)
	pf, psOpts := startPullFake(b, envs, b.N)
	fw, storage := startCountingWrite(b)
	runLoader(b, psOpts, fw, storage, envBytes)
	if n := pf.nacks.Load(); n > 0 {
		b.Errorf("%d messages nacked", n)
	}
}

// BenchmarkLoaderNoPubSub is the loader's own path without a Pub/Sub server or client:
// messages (as the client would hand them over) go through the batcher, the row encoder
// and AppendRows into the counting Storage Write fake, and are acked (a no-op here). This
// is the loader's ceiling: whatever Pub/Sub adds comes on top.
//
//	go test -run '^$' -bench 'LoaderNoPubSub$' -benchtime 1000000x ./sinks/bigquery/
func BenchmarkLoaderNoPubSub(b *testing.B) {
	fw, storage := startCountingWrite(b)
	envs, envBytes := benchEnvelopes(1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := NewLoader(ctx, LoaderOptions{
		Project: project, Subscription: "loader", Dataset: "d", Table: "t",
		// Never dialled: the benchmark feeds the batcher itself.
		PubSubOptions: []option.ClientOption{option.WithEndpoint("127.0.0.1:1"), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))},
		StorageOptions: storage,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ms, err := l.openStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	bt := &batcher{l: l, ms: ms, bg: ctx, enc: newRowEncoder(l.schema)}
	items := l.handOff()
	recvDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	st := startLoadStats(b)
	go func() {
		defer wg.Done()
		bt.run(ctx, items, recvDone)
	}()
	for i := range b.N {
		items <- &pubsub.Message{Data: envs[i%len(envs)]}
	}
	close(recvDone) // the batcher flushes what it holds and returns
	wg.Wait()
	l.wg.Wait()
	st.finish(b.N, envBytes)
	if got := fw.rowCount.Load(); got != int64(b.N) {
		b.Fatalf("fake counted %d rows, want %d", got, b.N)
	}
}
