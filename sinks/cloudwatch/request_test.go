package cloudwatch

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// replaced is msg as CloudWatch stores it: each byte that is not part of valid UTF-8 becomes
// U+FFFD.
func replaced(msg []byte) string {
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, n := utf8.DecodeRune(msg[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.Write(msg[i : i+n])
		}
		i += n
	}
	return b.String()
}

type decodedRequest struct {
	LogEvents []struct {
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	} `json:"logEvents"`
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
}

// checkPlan builds the requests of recs and checks each against every PutLogEvents rule, and
// that every record is either in exactly one request, with its message and time intact, or
// skipped with a reason that its time or size explains.
func checkPlan(t *testing.T, recs []*collector.Record, envelope bool, maxEvent int, now time.Time) {
	t.Helper()
	b := &builder{envelope: envelope, maxEventBytes: maxEvent}
	b.plan(recs, nil, now)
	seen := make([]int, len(recs))
	for _, s := range b.skips {
		seen[s.member]++
		e := b.events[s.member]
		var ok bool
		switch s.reason {
		case reasonEmpty:
			ok = len(e.msg) == 0
		case reasonOversize:
			ok = e.size+EventOverhead > maxEvent || len(e.msg) == 0 && recs[s.member].Flags&collector.FlagPart != 0
		case reasonTooOld:
			ok = e.ms < now.Add(-MaxAge).UnixMilli()
		case reasonTooNew:
			ok = e.ms > now.Add(MaxFuture).UnixMilli()
		}
		if !ok {
			t.Fatalf("record %d skipped as %s: size %d, time %d (now %d)", s.member, s.reason, e.size, e.ms, now.UnixMilli())
		}
	}
	for _, sp := range b.reqs {
		body := b.encode("/g", "s", sp)
		if !utf8.Valid(body) {
			t.Fatalf("request body is not valid UTF-8")
		}
		var req decodedRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("request body is not JSON: %v\n%.200q", err, body)
		}
		if req.LogGroupName != "/g" || req.LogStreamName != "s" {
			t.Fatalf("names %q %q", req.LogGroupName, req.LogStreamName)
		}
		n := len(req.LogEvents)
		if n < 1 || n > MaxRequestEvents {
			t.Fatalf("%d events in a request", n)
		}
		total := 0
		for i, ev := range req.LogEvents {
			size := len(ev.Message) + EventOverhead
			total += size
			if size > maxEvent {
				t.Fatalf("event of %d bytes over the %d limit", size, maxEvent)
			}
			if i > 0 && ev.Timestamp < req.LogEvents[i-1].Timestamp {
				t.Fatalf("events out of time order")
			}
			m := b.order[sp.lo+i]
			seen[m]++
			e := b.events[m]
			if want := replaced(e.msg); ev.Message != want || ev.Timestamp != unixMilli(recs[m].Time) || e.size != len(want) {
				t.Fatalf("record %d sent as (%d, %.80q), size %d; want (%d, %.80q), size %d", m, ev.Timestamp,
					ev.Message, e.size, unixMilli(recs[m].Time), want, len(want))
			}
			if ev.Timestamp < now.Add(-MaxAge-clockSlack).UnixMilli() || ev.Timestamp > now.Add(MaxFuture+clockSlack).UnixMilli() {
				t.Fatalf("event at %d sent though out of the accepted range around %d", ev.Timestamp, now.UnixMilli())
			}
		}
		if total > MaxRequestBytes {
			t.Fatalf("request of %d bytes", total)
		}
		if span := req.LogEvents[n-1].Timestamp - req.LogEvents[0].Timestamp; span >= MaxSpan.Milliseconds() {
			t.Fatalf("request spans %d ms", span)
		}
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("record %d accounted for %d times", i, c)
		}
	}
}

// fuzzRecords turns fuzz input into records: messages cut from data (any bytes), sizes from a
// few bytes to past the event limit, times in and out of order and out of range.
func fuzzRecords(data []byte, seed uint64, now time.Time) []*collector.Record {
	rnd := rand.New(rand.NewPCG(seed, seed>>7))
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "ns", Pod: "p", Container: "c"})
	n := 1 + rnd.IntN(400)
	recs := make([]*collector.Record, n)
	t := now.Add(-time.Duration(rnd.Int64N(int64(3 * 24 * time.Hour))))
	budget := 4 << 20 // bytes of messages per input, so fuzz workers stay small and quick
	for i := range recs {
		var size int
		switch rnd.IntN(20) {
		case 0:
			size = rnd.IntN(1_100_000)
		case 1, 2:
			size = rnd.IntN(120_000)
		case 3:
			size = 0
		default:
			size = rnd.IntN(300)
		}
		if size > budget {
			size = rnd.IntN(300)
		}
		budget -= size
		msg := make([]byte, size)
		if len(data) > 0 {
			off := rnd.IntN(len(data))
			for j := range msg {
				msg[j] = data[(off+j)%len(data)]
			}
		}
		switch rnd.IntN(10) {
		case 0:
			t = now.Add(-time.Duration(rnd.Int64N(int64(16 * 24 * time.Hour))))
		case 1:
			t = now.Add(time.Duration(rnd.Int64N(int64(3 * time.Hour))))
		case 2:
			t = t.Add(-time.Duration(rnd.Int64N(int64(time.Hour))))
		default:
			t = t.Add(time.Duration(rnd.Int64N(int64(20 * time.Minute))))
		}
		recs[i] = &collector.Record{Source: src, Time: t.UnixNano(), Message: msg}
	}
	return recs
}

func FuzzRequestBuilder(f *testing.F) {
	f.Add([]byte("plain ascii line"), uint64(1), false)
	f.Add([]byte("Grüße 日本語 ✓ \xff\xfe \xc3\x28 \xe2\x82 \"quoted\" \\ \t\n\x00"), uint64(2), false)
	f.Add([]byte(`{"level":"info","msg":"json"}`), uint64(3), true)
	f.Add([]byte("\xed\xa0\x80 surrogate, \xf4\x90\x80\x80 past U+10FFFF"), uint64(4), true)
	f.Add([]byte{}, uint64(5), false)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, envelope bool) {
		maxEvent := MaxEventBytes
		if seed%3 == 0 {
			maxEvent = 1024 + int(seed%200_000)
		}
		checkPlan(t, fuzzRecords(data, seed, now), envelope, maxEvent, now)
	})
}

func TestPlanSplitsBySpanCountAndBytes(t *testing.T) {
	now := time.Now()
	src := collector.NewSource(1, "pods", nil)
	f := func(name string, n int, every time.Duration, size int, wantReqs int) {
		t.Helper()
		var recs []*collector.Record
		for i := range n {
			at := now.Add(-time.Hour - time.Duration(n-i)*every)
			recs = append(recs, &collector.Record{Source: src, Time: at.UnixNano(), Message: []byte(strings.Repeat("x", size))})
		}
		checkPlan(t, recs, false, MaxEventBytes, now)
		b := &builder{maxEventBytes: MaxEventBytes}
		b.plan(recs, nil, now)
		if len(b.reqs) != wantReqs {
			t.Errorf("%s: %d requests, want %d", name, len(b.reqs), wantReqs)
		}
	}
	f("50 hours, one a minute", 3000, time.Minute, 10, 3)  // 1440 + 1440 + 120
	f("25,000 at once", 25_000, 0, 10, 3)                  // 10,000 + 10,000 + 5,000
	f("100 of 100 KB", 100, time.Millisecond, 100_000, 10) // 10 a request (11 x 100,026 > 1 MiB)
	f("one at the event limit", 1, 0, MaxEventBytes-EventOverhead, 1)
}

func BenchmarkPlanEncode(b *testing.B) {
	// One full request of ~250-byte JSON lines, as the pipeline hands a busy stream's batch.
	now := time.Now()
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "shop", Pod: "cart", Container: "app"})
	line := []byte(`{"level":"info","ts":"2026-11-23T03:00:00.123Z","logger":"http","msg":"request completed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","method":"GET","route":"/api/v1/orders","status":200,"duration_ms":12}`)
	var recs []*collector.Record
	for i := range 3800 {
		recs = append(recs, &collector.Record{Source: src, Time: now.Add(time.Duration(i) * time.Millisecond).UnixNano(), Message: line})
	}
	bld := &builder{maxEventBytes: MaxEventBytes}
	b.SetBytes(int64(len(line) * len(recs)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		bld.plan(recs, nil, now)
		for _, sp := range bld.reqs {
			bld.encode("/k8s/shop", "cart/app", sp)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*len(recs)), "cpu-ns/record")
}
