package cloudlogging

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging/loggingfake"
)

// benchRecords returns n records of about 250 bytes of message, half JSON objects (stdout),
// half text lines (stderr): the load.
func benchRecords(n int) []*collector.Record {
	out := make([]*collector.Record, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = rec(i, collector.StreamStdout, fmt.Sprintf(`{"severity":"INFO","time":"2026-11-23T03:00:00.%06dZ","message":"GET /api/v1/cart/%07d served","method":"GET","status":200,"latency_ms":12.25,"user":"u-%06d","trace":"4bf92f3577b34da6a3ce929d0e0e4736","tags":["web","cart"]}`, i%1000000, i, i%1000000))
		} else {
			out[i] = rec(i, collector.StreamStderr, fmt.Sprintf("2026-11-23T03:00:00.%06dZ WARN cart-service[%07d]: upstream inventory call took 412ms (deadline 500ms), retrying with backoff; request_id=7f3a9c2e-%08d attempt=2 of 5 node=gke-prod-pool-1", i%1000000, i, i))
		}
	}
	return out
}

func messageBytes(recs []*collector.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Message)
	}
	return n
}

// BenchmarkEntry compares three ways to build the LogEntry protobuf of a record:
//   - wire: the sink's way, JSON walked straight into wire bytes (entry.go);
//   - structwalk: JSON walked into structpb objects, a loggingpb.LogEntry, proto.Marshal;
//   - mapany: encoding/json into map[string]any, structpb.NewStruct, proto.Marshal (what the
//     client library's helpers lead to).
//
// One op is one record (half JSON, half text, ~250 bytes).
//
//	go test -run '^$' -bench Entry -benchmem ./sinks/cloudlogging/
func BenchmarkEntry(b *testing.B) {
	recs := benchRecords(1000)
	size := int64(messageBytes(recs) / len(recs))
	s := offlineSink(b, Options{})
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		sc := s.scratch.Get().(*sendScratch)
		sc.enc.now = testNow.UnixNano()
		buf := make([]byte, 0, 1<<20)
		for i := 0; b.Loop(); i++ {
			if len(buf) > 1<<20-4096 {
				buf = buf[:0]
			}
			sc.enc.labelRoom = maxLabels
			buf, _ = sc.enc.appendEntry(buf, recs[i%len(recs)])
		}
	})
	b.Run("structwalk", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		var w walker
		for i := 0; b.Loop(); i++ {
			r := recs[i%len(recs)]
			e := baseEntry(r)
			w.reset(r.Message)
			if v, ok := structValue(&w, 0); ok && v.GetStructValue() != nil {
				e.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: v.GetStructValue()}
			} else {
				e.Payload = &loggingpb.LogEntry_TextPayload{TextPayload: string(r.Message)}
			}
			if _, err := proto.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mapany", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := recs[i%len(recs)]
			e := baseEntry(r)
			var m map[string]any
			if json.Unmarshal(r.Message, &m) == nil {
				st, err := structpb.NewStruct(m)
				if err != nil {
					b.Fatal(err)
				}
				e.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: st}
			} else {
				e.Payload = &loggingpb.LogEntry_TextPayload{TextPayload: string(r.Message)}
			}
			if _, err := proto.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// baseEntry is the non-payload part of an entry built as objects (the comparison paths).
func baseEntry(r *collector.Record) *loggingpb.LogEntry {
	return &loggingpb.LogEntry{
		InsertId:  r.ID.String(),
		Timestamp: timestamppb.New(time.Unix(0, r.Time)),
		Severity:  ltype.LogSeverity_INFO,
	}
}

// structValue walks the JSON value at w.pos into a structpb.Value (the structwalk path).
func structValue(w *walker, depth int) (*structpb.Value, bool) {
	switch c := w.peek(); c {
	case '{':
		w.pos++
		st := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		if w.peek() == '}' {
			w.pos++
			return structpb.NewStructValue(st), true
		}
		for {
			raw, plain, ok := w.scanString()
			if !ok || w.peek() != ':' {
				return nil, false
			}
			w.pos++
			key := string(raw)
			if !plain {
				key = string(w.appendUnescaped(nil, raw))
			}
			v, ok := structValue(w, depth+1)
			if !ok {
				return nil, false
			}
			st.Fields[key] = v
			switch w.peek() {
			case ',':
				w.pos++
				w.peek()
			case '}':
				w.pos++
				return structpb.NewStructValue(st), true
			default:
				return nil, false
			}
		}
	case '[':
		w.pos++
		l := &structpb.ListValue{}
		if w.peek() == ']' {
			w.pos++
			return structpb.NewListValue(l), true
		}
		for {
			v, ok := structValue(w, depth+1)
			if !ok {
				return nil, false
			}
			l.Values = append(l.Values, v)
			switch w.peek() {
			case ',':
				w.pos++
			case ']':
				w.pos++
				return structpb.NewListValue(l), true
			default:
				return nil, false
			}
		}
	case '"':
		raw, plain, ok := w.scanString()
		if !ok {
			return nil, false
		}
		if plain {
			return structpb.NewStringValue(string(raw)), true
		}
		return structpb.NewStringValue(string(w.appendUnescaped(nil, raw))), true
	case 't':
		return structpb.NewBoolValue(true), w.literal("true")
	case 'f':
		return structpb.NewBoolValue(false), w.literal("false")
	case 'n':
		return structpb.NewNullValue(), w.literal("null")
	}
	num, ok := w.scanNumber()
	if !ok {
		return nil, false
	}
	f, _ := parseNumber(num)
	return structpb.NewNumberValue(f), true
}

// BenchmarkSend measures Send of ~250-byte records (half JSON, half text), 1000 per batch of
// one key, 4 batches in flight (the sink's default), through the real client into an
// in-process API that acknowledges without decoding (loggingfake.Counting): the sink, the
// client library and gRPC on loopback, the fake's cost included in cpu-s/GiB. One op is one
// record; MiB/s counts message bytes.
//
//	go test -run '^$' -bench 'Send$' -benchmem -benchtime 400000x ./sinks/cloudlogging/
func BenchmarkSend(b *testing.B) {
	c := loggingfake.StartCounting(b)
	f := &loggingfake.Server{Addr: c.Addr}
	benchSend(b, f, func() int64 { return c.Entries() })
}

// BenchmarkSendValidating is the same into the validating fake (it decodes, checks and keeps
// every entry): its cost, not the sink's, sets this figure.
func BenchmarkSendValidating(b *testing.B) {
	f := startFake(b)
	benchSend(b, f, func() int64 { return int64(f.Len()) })
}

func benchSend(b *testing.B, f *loggingfake.Server, arrived func() int64) {
	s := newTestSink(b, f, Options{})
	const batchSize, inFlight = 1000, 4
	// One key per batch, as the pipeline cuts them: stdout JSON and stderr text batches.
	all := benchRecords(2 * batchSize)
	var byStream [2][]*collector.Record
	for _, r := range all {
		byStream[r.Stream-collector.StreamStdout] = append(byStream[r.Stream-collector.StreamStdout], r)
	}
	msgBytes := messageBytes(all)
	b.SetBytes(int64(msgBytes / len(all)))
	var cpuBefore, cpuAfter syscall.Rusage
	var memBefore, memAfter runtime.MemStats
	runtime.ReadMemStats(&memBefore)
	syscall.Getrusage(syscall.RUSAGE_SELF, &cpuBefore)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; ; k++ {
				n := min(int64(batchSize), int64(b.N)-next.Add(batchSize)+batchSize)
				if n <= 0 {
					return
				}
				batch := &collector.SinkBatch{Records: byStream[k%2][:n]}
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
	runtime.ReadMemStats(&memAfter)
	// Exact, where allocs/op rounds: the client's and gRPC's per-request allocations spread
	// over the request's records (the fake's included).
	b.ReportMetric(float64(memAfter.Mallocs-memBefore.Mallocs)/float64(b.N), "allocs/record")
	cpu := time.Duration(cpuAfter.Utime.Nano()+cpuAfter.Stime.Nano()) -
		time.Duration(cpuBefore.Utime.Nano()+cpuBefore.Stime.Nano())
	if got := arrived(); got < int64(b.N) {
		b.Fatalf("%d entries arrived, %d sent", got, b.N)
	}
	gib := float64(b.N) * float64(msgBytes) / float64(len(all)) / (1 << 30)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/gib, "cpu-s/GiB")
}
