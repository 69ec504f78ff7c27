package pubsub

import (
	"math"
	"strings"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/collector"
)

// builtMessage is the message Send makes of r with ordering key key.
func builtMessage(s *Sink, r *collector.Record, key string) *pb.PubsubMessage {
	m := &pb.PubsubMessage{Attributes: map[string]string{}}
	var a arena
	s.fillMessage(m, r, r.ID.String(), key, &a)
	return m
}

// reservedFlags is what exactBytes counts for flags r does not carry: it measures a record
// before the pipeline flags it, so it always leaves room for both.
func reservedFlags(r *collector.Record) int {
	n := attrSize(attrPart, maxPartAttr) + attrSize(attrParts, maxPartsAttr)
	if r.Flags&collector.FlagPart != 0 {
		n -= attrSize(attrPart, "0") // a one-digit part number in these tests
		if r.Parts > 0 {
			n -= attrSize(attrParts, "0") // and a one-digit count
		}
	}
	if r.Flags&collector.FlagTruncated == 0 {
		n += attrSize(attrTruncated, "true")
	}
	return n
}

// checkMeasure asserts that s measures r exactly (but for the reserved flags), that the upper
// and lower bounds hold, and that RecordBytes never reports less than the message is.
func checkMeasure(t *testing.T, s *Sink, name string, r *collector.Record) {
	t.Helper()
	key := ""
	if s.keys != nil {
		key = s.keys.key(r)
	}
	size := proto.Size(builtMessage(s, r, key))
	exact, upper, lower := s.exactBytes(r), s.upperBytes(r), s.lowerBytes(r)
	if want := size + reservedFlags(r); exact != want {
		t.Errorf("%s: exactBytes %d, want %d (message %d + reserved flags %d)", name, exact, want, size, reservedFlags(r))
	}
	if upper < exact || lower > exact {
		t.Errorf("%s: bounds [%d, %d] do not hold exact %d", name, lower, upper, exact)
	}
	if got := s.recordBytes(r); got < size {
		t.Errorf("%s: RecordBytes %d under the real %d", name, got, size)
	}
}

func TestRecordBytesMeasuresTheMessage(t *testing.T) {
	plain := newTestSink(t, "127.0.0.1:1", testTopic, Options{})
	keyed := newTestSink(t, "127.0.0.1:1", testTopic, Options{OrderingKey: "{namespace}/{pod}"})
	rich := collector.NewSource(3, "apps", &collector.Kube{
		Namespace: "shop", Pod: "cart-\xff-7d9f", PodUID: "0b6c", Container: "app", Node: "n1",
		Labels:   map[string]string{"app": "cart", "tier": "web \"quoted\""},
		Workload: "cart", WorkloadKind: "Deployment", Image: "registry/cart:1.2",
		Annotations: map[string]string{"note": "é\n"},
	})
	noKube := collector.NewSource(4, "fwd", nil)
	base := func(msg string) *collector.Record {
		return &collector.Record{Source: testSource, Time: 1_700_000_000_123_456_789, ID: collector.MakeID(9, 1),
			Stream: collector.StreamStdout, Message: []byte(msg)}
	}
	cases := map[string]*collector.Record{}
	cases["plain"] = base(strings.Repeat("x", 60))
	cases["escapes"] = base("quote \" backslash \\ nl \n cr \r tab \t ctl \x01\x1f del \x7f")
	cases["multibyte"] = base("é € 𝄞")
	cases["invalid utf8"] = base("bad \xff \xc3 \xed\xa0\x80 end \xf0\x9f")
	r := base("with fields")
	r.Fields = []byte(`{"level":"info","n":3}`)
	cases["fields"] = r
	r = base("tagged")
	r.Tag, r.Stream = []byte("app.\"cart\"\x02"), collector.StreamApp
	cases["tag"] = r
	r = base("no source")
	r.Source = nil
	cases["nil source"] = r
	r = base("rich metadata")
	r.Source = rich
	cases["rich kube"] = r
	r = base("no kube")
	r.Source, r.Stream = noKube, collector.StreamUnknown
	cases["no kube"] = r
	r = base("cut short")
	r.Flags = collector.FlagTruncated
	cases["truncated"] = r
	r = base("a part")
	r.Flags, r.ID = collector.FlagPart, collector.MakeID(9, 1).Part(3)
	cases["part"] = r
	r = base("a counted part")
	r.Flags, r.ID, r.Parts = collector.FlagPart, collector.MakeID(9, 1).Part(3), 7
	cases["counted part"] = r
	r = base("stderr")
	r.Stream = collector.StreamStderr
	cases["stderr"] = r
	for name, tm := range map[string]int64{"epoch": 0, "before epoch": -1, "max time": math.MaxInt64, "min time": math.MinInt64} {
		r = base(name)
		r.Time = tm
		cases[name] = r
	}
	// Over one quotedLen piece, with a 3-byte character across the piece boundary, escapes and
	// invalid bytes.
	r = base("a" + strings.Repeat("€", quoteChunk/3+10) + strings.Repeat("\"\x00\xff", 1000))
	cases["long"] = r

	for name, r := range cases {
		checkMeasure(t, plain, name, r)
		checkMeasure(t, keyed, name+" (ordering key)", r)
	}
}

// TestRecordBytesCheapWithinTheLimit: an ordinary record is measured by its upper bound; only
// one near the limit is encoded to measure it.
func TestRecordBytesCheapWithinTheLimit(t *testing.T) {
	s := newTestSink(t, "127.0.0.1:1", testTopic, Options{MaxMessageBytes: 4096})
	small := makeRecords(1, 200, "small")[0]
	if got, want := s.recordBytes(small), s.upperBytes(small); got != want {
		t.Errorf("small record: RecordBytes %d, want the upper bound %d", got, want)
	}
	// All quotes: escaped to twice its size, so the bound (6x) is over, the lower bound (1x)
	// is within, and only encoding tells that it is over.
	quotes := makeRecords(1, 0, "q")[0]
	quotes.Message = []byte(strings.Repeat(`"`, 2000))
	if got, want := s.recordBytes(quotes), s.exactBytes(quotes); got != want || got <= 4096 {
		t.Errorf("quotes: RecordBytes %d, want exact %d over 4096", got, want)
	}
	huge := makeRecords(1, 100_000, "huge")[0]
	if got, want := s.recordBytes(huge), s.lowerBytes(huge); got != want || got <= 4096 {
		t.Errorf("huge record: RecordBytes %d, want the lower bound %d over 4096", got, want)
	}
}

func TestQuotedLen(t *testing.T) {
	f := func(s string) {
		t.Helper()
		want := len(collector.AppendJSONString(nil, []byte(s)))
		for _, chunk := range []int{1, 4, 5, 6, 7, 64, quoteChunk} {
			if got := quotedLen([]byte(s), chunk); got != want {
				t.Errorf("quotedLen(%q, %d) = %d, the encoder writes %d", s, chunk, got, want)
			}
		}
	}
	f("")
	f("plain ascii, long enough for the 8-byte paths of the encoder")
	f("quote \" backslash \\ newline \n cr \r tab \t control \x00 \x01 \x1f del \x7f")
	f("multibyte é € 𝄞 and more é € 𝄞")
	f("invalid \xff \xc3 \xed\xa0\x80 \xf0\x9f\x98 end")
	f("\x80\x80\x80\x80\x80 continuation bytes only")
}

// FuzzRecordBytes checks the measure against the message Send builds, for any record.
func FuzzRecordBytes(f *testing.F) {
	f.Add([]byte("hello"), []byte(""), []byte(""), "cart-7d9f", uint8(0), uint8(1), int64(0), 64)
	f.Add([]byte("é\n\"\\\x00\xff"), []byte("app.tag"), []byte(`{"a":1}`), "p\xff", uint8(1), uint8(3), int64(-1), 3)
	f.Add([]byte(strings.Repeat("€\"", 200)), []byte("\x01"), []byte(`{}`), "", uint8(2), uint8(0), int64(math.MaxInt64), 5)
	keyed := newTestSink(f, "127.0.0.1:1", testTopic, Options{OrderingKey: "{pod}/{stream}"})
	plain := newTestSink(f, "127.0.0.1:1", testTopic, Options{})
	f.Fuzz(func(t *testing.T, msg, tag, fields []byte, pod string, flags, stream uint8, tm int64, chunk int) {
		if want := len(collector.AppendJSONString(nil, msg)); quotedLen(msg, 1+int(uint(chunk)%300)) != want {
			t.Fatalf("quotedLen(%q) != %d", msg, want)
		}
		src := collector.NewSource(1, "in"+pod, &collector.Kube{Namespace: "ns", Pod: pod, Container: pod})
		r := &collector.Record{Source: src, Time: tm, ID: collector.MakeID(1, 2), Stream: collector.Stream(stream % 4),
			Flags: flags & (collector.FlagTruncated | collector.FlagPart), Message: msg, Tag: tag, Fields: fields}
		if r.Flags&collector.FlagPart != 0 {
			r.ID = r.ID.Part(int(flags>>4) % 10)
			r.Parts = uint32(flags>>6) * 3 // 0 (unknown), 3, 6 or 9: one digit
		}
		for _, s := range []*Sink{plain, keyed} {
			checkMeasure(t, s, "fuzz", r)
		}
	})
}

// BenchmarkRecordBytes is the pipeline's per-record cost of measuring an ordinary record.
func BenchmarkRecordBytes(b *testing.B) {
	s := newTestSink(b, "127.0.0.1:1", testTopic, Options{})
	rs := makeRecords(1000, 60, "bench")
	b.ReportAllocs()
	defer reportCPUPerOp(b)()
	for i := 0; b.Loop(); i++ {
		s.recordBytes(rs[i%len(rs)])
	}
}

// BenchmarkAppendKey is the pipeline's per-record cost of a record's ordering key.
func BenchmarkAppendKey(b *testing.B) {
	s := newTestSink(b, "127.0.0.1:1", testTopic, Options{OrderingKey: "{namespace}/{pod}"})
	rs := makeRecords(1000, 60, "bench")
	var dst []byte
	b.ReportAllocs()
	defer reportCPUPerOp(b)()
	for i := 0; b.Loop(); i++ {
		dst = s.AppendKey(dst[:0], rs[i%len(rs)])
	}
}

// TestDataBound: the arena is sized by a bound that holds, and that is exact for a big record.
func TestDataBound(t *testing.T) {
	s := newTestSink(t, "127.0.0.1:1", testTopic, Options{})
	for _, size := range []int{0, 60, arenaChunk / 6, arenaChunk, 3 << 20} {
		r := makeRecords(1, size, "bound")[0]
		r.Message = append(r.Message, "é\"\n\x01"...)
		got, n := s.dataBound(r), len(r.AppendJSON(nil))
		if got < n || size >= arenaChunk && got != n {
			t.Errorf("%d-byte message: dataBound %d, envelope %d", size, got, n)
		}
	}
}
