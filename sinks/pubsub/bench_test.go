package pubsub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"

	"github.com/tailgate-dev/tailgate/sinks/pubsub/pubsubemu"
)

// BenchmarkSend measures Send of ~250-byte records, 1000 per batch, 4 batches in flight (the
// pipeline's default), against an in-process server that acknowledges everything, so the
// figure is the sink plus the client library plus gRPC on loopback. One op is one record.
//
//	go test -run '^$' -bench 'Send$' -benchmem ./sinks/pubsub/
func BenchmarkSend(b *testing.B) {
	_, addr := newAckServer(b, false)
	benchSend(b, addr, "projects/"+testProject+"/topics/"+testTopic, Options{})
}

// BenchmarkSendOrdered is BenchmarkSend with ordering_key "{pod}": each of the 4 senders
// publishes the batches of its own pod, as the pipeline cuts them per key.
//
//	go test -run '^$' -bench 'SendOrdered$' -benchmem ./sinks/pubsub/
func BenchmarkSendOrdered(b *testing.B) {
	_, addr := newAckServer(b, false)
	benchSend(b, addr, "projects/"+testProject+"/topics/"+testTopic, Options{OrderingKey: "{pod}"})
}

// BenchmarkSendEmulator is the same against the real emulator (started or named by
// TAILGATE_PUBSUB_EMULATOR_HOST): the emulator's cost, not the sink's, sets this figure.
func BenchmarkSendEmulator(b *testing.B) {
	addr := pubsubemu.Addr(b)
	_, topic, _ := emulatorTopic(b, addr)
	benchSend(b, addr, topic, Options{})
}

func benchSend(b *testing.B, addr, topic string, opts Options) {
	s := newTestSink(b, addr, topic, opts)
	const batchSize, inFlight = 1000, 4
	batches := make([]*collector.SinkBatch, inFlight)
	var envelopeBytes int
	for i := range batches {
		rs := makeRecords(batchSize, 60, "bench") // 60-byte message: a ~250-byte envelope
		batches[i] = &collector.SinkBatch{Records: rs}
		if opts.OrderingKey != "" {
			k := *testSource.Kube()
			k.Pod = fmt.Sprintf("%s-%d", k.Pod, i)
			src := collector.NewSource(uint64(100+i), "pods", &k)
			for _, r := range rs {
				r.Source = src
			}
			batches[i].Key = k.Pod
		}
		if i == 0 {
			for _, r := range rs {
				envelopeBytes += len(r.AppendJSON(nil))
			}
		}
	}
	b.SetBytes(int64(envelopeBytes / batchSize))
	var cpuBefore, cpuAfter syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &cpuBefore)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()

	var next atomic.Int64 // records handed out
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := min(int64(batchSize), int64(b.N)-next.Add(batchSize)+batchSize)
				if n <= 0 {
					return
				}
				batch := &collector.SinkBatch{Records: batches[g].Records[:n], Key: batches[g].Key}
				if err := s.Send(context.Background(), batch); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &cpuAfter)
	cpu := time.Duration(cpuAfter.Utime.Nano()+cpuAfter.Stime.Nano()) -
		time.Duration(cpuBefore.Utime.Nano()+cpuBefore.Stime.Nano())
	gib := float64(b.N) * float64(envelopeBytes) / batchSize / (1 << 30)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/gib, "cpu-s/GiB")
}

// reportCPUPerOp reports the process's CPU time per op (cpu-ns/op) when the returned function
// runs: on a shared machine wall-clock ns/op counts the time other work held the CPU.
func reportCPUPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
