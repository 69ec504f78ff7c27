package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailgate-dev/tailgate/buffer"
)

// keyedSink groups records by their source's pod, as a CloudWatch sink groups by stream.
type keyedSink struct{ fakeSink }

func (s *keyedSink) AppendKey(dst []byte, r *Record) []byte {
	if k := r.Source.Kube(); k != nil {
		return append(dst, k.Pod...)
	}
	return dst
}

func (s *keyedSink) sent() []*SinkBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*SinkBatch{}, s.batches...)
}

// TestKeyedBatchesHoldOneKey: records of three pods interleave in every frame; each batch the
// sink gets holds one pod only, at most MaxRecords, and with OrderedKeys every record arrives
// once, in its source's order, although batches of different keys are sent in parallel.
func TestKeyedBatchesHoldOneKey(t *testing.T) {
	f := func(maxOpenKeys int) {
		t.Helper()
		sink := &keyedSink{fakeSink{name: "cw", limits: Limits{MaxRecords: 7, MaxInFlight: 2, MaxDelay: 20 * time.Millisecond, MaxOpenKeys: maxOpenKeys, OrderedKeys: true}}}
		p := newTestPipeline(t, t.TempDir(), []Sink{sink}, nil, nil)
		p.Start(context.Background())
		srcs := []*Source{
			NewSource(1, "pods", &Kube{Namespace: "ns", Pod: "a"}),
			NewSource(2, "pods", &Kube{Namespace: "ns", Pod: "b"}),
			NewSource(3, "pods", &Kube{Namespace: "ns", Pod: "c"}),
		}
		b := &Batch{}
		for i := range 90 {
			s := srcs[i%3]
			b.Records = append(b.Records, Record{Source: s, ID: MakeID(s.Key, uint64(i)), Message: fmt.Appendf(nil, "%s %02d", s.Kube().Pod, i)})
		}
		if _, err := p.Emitter("pods").Emit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "90 records", func() bool { return len(sink.messages()) == 90 })
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		last := map[string]string{}
		for _, sb := range sink.sent() {
			if len(sb.Records) > 7 {
				t.Errorf("open keys %d: batch of %d records, MaxRecords 7", maxOpenKeys, len(sb.Records))
			}
			for _, r := range sb.Records {
				pod := r.Source.Kube().Pod
				if pod != sb.Key {
					t.Fatalf("open keys %d: batch key %q holds a record of %q", maxOpenKeys, sb.Key, pod)
				}
				if m := string(r.Message); m <= last[pod] {
					t.Errorf("open keys %d: %q after %q: source order broken", maxOpenKeys, m, last[pod])
				}
				last[pod] = string(r.Message)
			}
		}
	}
	f(0) // default: all three keys open at once
	f(2) // a third key sends the oldest open batch early, still one key per batch
}

// TestPartialRetryResendsOnlyWhatFailed: a sink that accepts some records and throttles others
// gets only the throttled ones again, so nothing accepted is sent twice.
func TestPartialRetryResendsOnlyWhatFailed(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink := &fakeSink{name: "cw", limits: Limits{MaxRecords: 100, MaxDelay: 10 * time.Millisecond}}
	sink.fail = func(b *SinkBatch, attempt int) error {
		var re RecordErrors
		for i, r := range b.Records {
			var n int
			fmt.Sscanf(string(r.Message), "line %d", &n)
			// Odd records are throttled on their first two sends; record 4 is refused for good.
			switch {
			case n == 4:
				re.Failed = append(re.Failed, RecordError{Index: i, Err: WithReason("too_old", errors.New("too old"))})
			case n%2 == 1 && attempt <= 2:
				re.Retry = append(re.Retry, RecordError{Index: i, Err: errors.New("throttled")})
			}
		}
		if len(re.Failed)+len(re.Retry) == 0 {
			return nil
		}
		return &re
	}
	p := newTestPipeline(t, t.TempDir(), []Sink{sink}, nil, reg)
	p.Start(context.Background())
	emitN(t, p.Emitter("pods"), NewSource(1, "pods", nil), 0, 10, "")
	waitFor(t, "9 delivered", func() bool { return len(sink.messages()) == 9 })
	m := p.metrics
	waitFor(t, "dead letter counted", func() bool {
		return testutil.ToFloat64(m.SinkRecords.WithLabelValues("cw", ResultDeadLetter)) == 1
	})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, msg := range sink.messages() {
		seen[msg]++
	}
	for i := range 10 {
		want := 1
		if i == 4 {
			want = 0
		}
		if got := seen[fmt.Sprintf("line %d", i)]; got != want {
			t.Errorf("line %d delivered %d times, want %d", i, got, want)
		}
	}
	batches := sink.batches
	if len(batches) != 3 || len(batches[1].Records) != 5 || len(batches[2].Records) != 5 {
		var sizes []int
		for _, b := range batches {
			sizes = append(sizes, len(b.Records))
		}
		t.Errorf("sends of %v records, want [10 5 5] (the retries carry only the 5 throttled records)", sizes)
	}
	if got := testutil.ToFloat64(m.SinkRecords.WithLabelValues("cw", ResultSent)); got != 9 {
		t.Errorf("sent = %v, want 9", got)
	}
	if got := testutil.ToFloat64(m.SinkRecords.WithLabelValues("cw", ResultRetried)); got != 10 {
		t.Errorf("retried = %v, want 10 (5 records twice)", got)
	}
	if got := testutil.ToFloat64(m.DeadLetterRecords.WithLabelValues("cw", "too_old")); got != 1 {
		t.Errorf("dead letters with reason too_old = %v, want 1", got)
	}
}

// runesSink measures a record as its message's bytes plus a fixed overhead.
func oversizeSink(policy Oversize, max int) *fakeSink {
	return &fakeSink{name: "s", limits: Limits{MaxDelay: 10 * time.Millisecond, MaxRecordBytes: max, Oversize: policy,
		RecordBytes: func(r *Record) int { return len(r.Message) + len(r.Fields) + 3 }}}
}

func TestOversizePolicies(t *testing.T) {
	msg := strings.Repeat("añb€c", 6) // 1+2+1+3+1 = 8 bytes per repeat, 48 bytes in all
	run := func(policy Oversize) (*fakeSink, *Pipeline) {
		sink := oversizeSink(policy, 13)
		p := newTestPipeline(t, t.TempDir(), []Sink{sink}, nil, prometheus.NewRegistry())
		p.Start(context.Background())
		src := NewSource(1, "pods", nil)
		b := &Batch{Records: []Record{
			{Source: src, ID: MakeID(1, 0), Message: []byte("small")},
			{Source: src, ID: MakeID(1, 1), Message: []byte(msg), Fields: []byte(`{"a":1}`)},
		}}
		if _, err := p.Emitter("pods").Emit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		return sink, p
	}

	t.Run("split", func(t *testing.T) {
		sink, p := run(OversizeSplit)
		waitFor(t, "parts", func() bool {
			got := sink.messages()
			return len(got) > 1 && strings.Join(got[1:], "") == msg
		})
		p.Stop(context.Background())
		var parts []*Record
		for _, b := range sink.batches {
			parts = append(parts, b.Records...)
		}
		parts = parts[1:]
		for i, r := range parts {
			if n := len(r.Message) + 3; n > 13 {
				t.Errorf("part %d measures %d bytes, limit 13", i, n)
			}
			if !utf8.Valid(r.Message) {
				t.Errorf("part %d %q cut inside a character", i, r.Message)
			}
			if r.Flags&FlagPart == 0 || r.Fields != nil {
				t.Errorf("part %d: flags %b, fields %q", i, r.Flags, r.Fields)
			}
			if want := MakeID(1, 1).Part(i); r.ID != want {
				t.Errorf("part %d id %s, want %s", i, r.ID, want)
			}
			if r.Parts != uint32(len(parts)) {
				t.Errorf("part %d says %d parts, want %d", i, r.Parts, len(parts))
			}
		}
		if got := testutil.ToFloat64(p.metrics.SinkOversize.WithLabelValues("s", "split")); got != 1 {
			t.Errorf("split counted %v times, want 1", got)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		sink, p := run(OversizeTruncate)
		waitFor(t, "two records", func() bool { return len(sink.messages()) == 2 })
		p.Stop(context.Background())
		r := sink.batches[len(sink.batches)-1].Records
		got := r[len(r)-1]
		// 13 - 3 bytes of overhead leave 10: "añb€ca" is 9, the next "ñ" would make 11.
		if string(got.Message) != msg[:9] || got.Flags&FlagTruncated == 0 {
			t.Errorf("truncated to %q (flags %b), want %q flagged", got.Message, got.Flags, msg[:9])
		}
	})
	t.Run("dead_letter", func(t *testing.T) {
		sink, p := run(OversizeDeadLetter)
		waitFor(t, "dead letter", func() bool {
			return testutil.ToFloat64(p.metrics.DeadLetterRecords.WithLabelValues("s", "oversize")) == 1
		})
		waitFor(t, "small record", func() bool { return len(sink.messages()) == 1 })
		p.Stop(context.Background())
	})
}

func TestFitCutsAtCharacterBoundaries(t *testing.T) {
	r := &sinkRunner{size: func(r *Record) int { return len(r.Message) + 2 }}
	f := func(msg string, limit, want int) {
		t.Helper()
		if got := r.fit(&Record{}, []byte(msg), limit); got != want {
			t.Errorf("fit(%q, %d) = %d, want %d", msg, limit, got, want)
		}
	}
	f("abcdef", 5, 3)
	f("ab€d", 5, 2) // € is 3 bytes: cut before it
	f("ab€d", 7, 5)
	f("€€", 4, -1) // no whole character fits in 2 bytes
	f("", 2, 0)    // an empty message fits exactly
	f("x", 2, -1)
	f("\xff\xff\xff\xff", 4, 2) // invalid UTF-8 is cut where the limit falls
}

func TestBackoffBounds(t *testing.T) {
	for attempt := range 25 {
		d := retryBase << min(attempt, 16)
		if d > retryMax || d <= 0 {
			d = retryMax
		}
		for range 200 {
			got := backoff(attempt)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, got, d/2, d)
			}
		}
	}
}

func TestRecordIDPart(t *testing.T) {
	id := MakeID(7, 12345)
	if id.Part(0) != id {
		t.Error("part 0 must keep the id")
	}
	seen := map[ID]bool{id: true}
	for i := 1; i < 1000; i++ {
		p := id.Part(i)
		if seen[p] {
			t.Fatalf("part %d id repeats", i)
		}
		seen[p] = true
		if p == MakeID(7, uint64(12345+i)) {
			t.Fatalf("part %d collides with a real record's id", i)
		}
	}
}

// TestMaxOpenBytesSendsTheOldest: with many keys and a long MaxDelay, the partial batches held
// open are bounded by MaxOpenBytes (they pin buffer frames in memory): the oldest goes first,
// and every record still arrives once.
func TestMaxOpenBytesSendsTheOldest(t *testing.T) {
	cost := func(*Record) int { return 100 }
	sink := &keyedSink{fakeSink{name: "cw", limits: Limits{MaxRecords: 1000, MaxBytes: 1 << 20, MaxDelay: time.Hour,
		MaxOpenBytes: 1000, RecordCost: cost}}}
	p := newTestPipeline(t, t.TempDir(), []Sink{sink}, nil, nil)
	p.Start(context.Background())
	var srcs []*Source
	for i := range 10 {
		srcs = append(srcs, NewSource(uint64(i+1), "pods", &Kube{Namespace: "ns", Pod: fmt.Sprintf("p%d", i)}))
	}
	b := &Batch{}
	for i := range 200 {
		s := srcs[i%10]
		b.Records = append(b.Records, Record{Source: s, ID: MakeID(s.Key, uint64(i)), Message: fmt.Appendf(nil, "%03d", i)})
	}
	if _, err := p.Emitter("pods").Emit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// With MaxDelay an hour, only the open-bytes bound sends batches before the drain.
	waitFor(t, "most records sent before any deadline", func() bool { return len(sink.messages()) >= 190 })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.messages()); n != 200 {
		t.Fatalf("%d records delivered, want 200", n)
	}
	for _, sb := range sink.sent() {
		if c := len(sb.Records) * 100; c > 1000 {
			t.Errorf("a batch of cost %d: more than MaxOpenBytes was held open", c)
		}
	}
}

// A sink that fails retryably, many batches at once, many times each, costs one warning line
// per limiter interval (with the count held back), not one per retry.
func TestRetryWarningsRateLimited(t *testing.T) {
	var logs lockedBuffer
	const records, failures = 200, 2 // every one-record batch fails twice, then is delivered
	sink := &fakeSink{name: "s", limits: Limits{MaxRecords: 1, MaxInFlight: 64, MaxDelay: time.Millisecond},
		fail: func(_ *SinkBatch, attempt int) error {
			if attempt <= failures {
				return errors.New("503 service unavailable")
			}
			return nil
		}}
	m := NewMetrics(nil)
	p, err := NewPipeline(PipelineOptions{
		DataDir: t.TempDir(),
		Buffer:  buffer.Options{MaxBytes: 64 << 20, SegmentBytes: 1 << 20, Sync: 10 * time.Millisecond},
		Sinks:   []Sink{sink},
		Metrics: m,
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(context.Background())
	emitN(t, p.Emitter("pods"), NewSource(1, "pods", nil), 0, records, "")
	waitFor(t, "delivery after the retries", func() bool { return len(sink.messages()) == records })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	retried := testutil.ToFloat64(m.SinkRecords.WithLabelValues("s", ResultRetried))
	if retried != records*failures {
		t.Fatalf("%v records retried, want %d", retried, records*failures)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"batch send failed; retrying"`) {
			lines++
		}
	}
	if lines < 1 || lines > 2 {
		t.Errorf("%d retry warning lines for %v retries, want 1 (2 if the run crossed an interval)\n%s", lines, retried, logs.String())
	}
}

// lockedBuffer is an io.Writer safe for the goroutines of a pipeline.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
