package pubsub

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/collector"
)

// envelope is the part of the record contract these tests look at.
type envelope struct {
	ID      string          `json:"id"`
	Message string          `json:"message"`
	Tag     string          `json:"tag"`
	Fields  json.RawMessage `json:"fields"`
}

func decodeEnvelope(t *testing.T, m *pb.PubsubMessage) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatalf("data is not JSON: %v\n%s", err, m.Data)
	}
	return env
}

func TestRequestLimitsRespected(t *testing.T) {
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{})
	// 2,500 small records (count limit) and then 12 of 1 MB in one batch (byte limit).
	small := makeRecords(2500, 100, "small")
	for start := 0; start < len(small); start += s.Limits().MaxRecords {
		if err := send(t, s, small[start:min(start+s.Limits().MaxRecords, len(small))]); err != nil {
			t.Fatalf("Send small: %v", err)
		}
	}
	big := makeRecords(12, 1_000_000, "big")
	if err := send(t, s, big); err != nil {
		t.Fatalf("Send big: %v", err)
	}
	reqs, msgs := srv.stats()
	if len(msgs) != len(small)+len(big) {
		t.Fatalf("server got %d messages, want %d", len(msgs), len(small)+len(big))
	}
	for _, r := range reqs {
		if r.count > MaxRequestMessages || r.bytes > MaxRequestBytes {
			t.Errorf("request of %d messages, %d bytes breaks the 1000 / 10 MB limits", r.count, r.bytes)
		}
	}
}

// oversizeRecords are two ordinary records around one over 2048 bytes as Pub/Sub counts it:
// its message is escape-heavy (quotes, newlines, multibyte and control characters), so its
// envelope is much bigger than its bytes, and it has fields, which a cut record loses.
func oversizeRecords() []*collector.Record {
	rs := makeRecords(3, 50, "fit")
	rs[1].Message = bytes.Repeat([]byte("é\"\n€\x01ab"), 500)
	rs[1].Fields = []byte(`{"level":"warn"}`)
	return rs
}

// runOversize sends oversizeRecords through the real pipeline to a sink with a 2048-byte
// message limit and the given policy, and returns what the server received once want
// messages arrived.
func runOversize(t *testing.T, policy string, want func(got int) bool) ([]*collector.Record, []*pb.PubsubMessage, *collector.Metrics) {
	t.Helper()
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{MaxMessageBytes: 2048, Oversize: policy})
	p, m := startPipeline(t, s)
	rs := oversizeRecords()
	emit(t, p, rs)
	waitFor(t, "messages", func() bool { _, msgs := srv.stats(); return want(len(msgs)) })
	_, msgs := srv.stats()
	for _, msg := range msgs {
		if size := proto.Size(msg); size > 2048 {
			t.Errorf("message %s is %d bytes, over 2048", msg.Attributes["id"], size)
		}
	}
	return rs, msgs, m
}

func TestOversizeTruncateIsTheDefault(t *testing.T) {
	rs, msgs, m := runOversize(t, "", func(n int) bool { return n == 3 })
	byID := map[string]*pb.PubsubMessage{}
	for _, msg := range msgs {
		byID[msg.Attributes["id"]] = msg
	}
	for i, r := range rs {
		msg := byID[r.ID.String()]
		if msg == nil {
			t.Fatalf("record %d not delivered", i)
		}
		env := decodeEnvelope(t, msg)
		if i != 1 {
			if env.Message != string(r.Message) || msg.Attributes[attrTruncated] != "" {
				t.Errorf("record %d changed: %q %v", i, env.Message, msg.Attributes)
			}
			continue
		}
		if msg.Attributes[attrTruncated] != "true" || msg.Attributes[attrPart] != "" {
			t.Errorf("truncated record: attributes %v, want truncated=true", msg.Attributes)
		}
		if !strings.HasPrefix(string(r.Message), env.Message) || string(env.Fields) != "{}" {
			t.Errorf("truncated record: message %q is not a prefix, or fields %s kept", env.Message, env.Fields)
		}
		// As much as fits: the measure reserves only the part and parts attributes beside
		// the message.
		if size := proto.Size(msg); size < 2048-48 {
			t.Errorf("truncated to %d bytes, want close to 2048", size)
		}
	}
	if got := testutil.ToFloat64(m.SinkOversize.WithLabelValues("pubsub", "truncate")); got != 1 {
		t.Errorf("oversize truncate counted %v, want 1", got)
	}
}

func TestOversizeSplit(t *testing.T) {
	rs, msgs, m := runOversize(t, "split", func(n int) bool { return n >= 5 })
	var parts []*pb.PubsubMessage
	for _, msg := range msgs {
		if msg.Attributes[attrPart] != "" {
			parts = append(parts, msg)
		}
	}
	slices.SortFunc(parts, func(a, b *pb.PubsubMessage) int {
		x, _ := strconv.Atoi(a.Attributes[attrPart])
		y, _ := strconv.Atoi(b.Attributes[attrPart])
		return x - y
	})
	if len(parts) < 3 || len(msgs) != len(parts)+2 {
		t.Fatalf("%d messages, %d parts: want the 2 small records and the big one in several parts", len(msgs), len(parts))
	}
	var whole strings.Builder
	for i, msg := range parts {
		env := decodeEnvelope(t, msg)
		if want := rs[1].ID.Part(i).String(); env.ID != want || msg.Attributes[attrID] != want {
			t.Errorf("part %d: id %s (attribute %s), want %s", i, env.ID, msg.Attributes[attrID], want)
		}
		if msg.Attributes[attrPart] != strconv.Itoa(i) || msg.Attributes[attrParts] != strconv.Itoa(len(parts)) ||
			msg.Attributes[attrTruncated] != "" {
			t.Errorf("part %d of %d: attributes %v", i, len(parts), msg.Attributes)
		}
		if string(env.Fields) != "{}" {
			t.Errorf("part %d: fields %s, want none", i, env.Fields)
		}
		whole.WriteString(env.Message)
	}
	if whole.String() != string(rs[1].Message) {
		t.Errorf("parts put together differ from the record's message")
	}
	if got := testutil.ToFloat64(m.SinkOversize.WithLabelValues("pubsub", "split")); got != 1 {
		t.Errorf("oversize split counted %v, want 1", got)
	}
}

func TestOversizeDeadLetter(t *testing.T) {
	rs, msgs, m := runOversize(t, "dead_letter", func(n int) bool { return n == 2 })
	waitFor(t, "the dead letter", func() bool {
		return testutil.ToFloat64(m.DeadLetterRecords.WithLabelValues("pubsub", "oversize")) == 1
	})
	for _, msg := range msgs {
		if msg.Attributes[attrID] == rs[1].ID.String() {
			t.Errorf("the oversize record was published")
		}
	}
}

// TestRecordOverTenMegabytes sends a record over the real service limit with the default
// options through the pipeline: it arrives truncated within the limit, next to the limit, in a
// request the service takes.
func TestRecordOverTenMegabytes(t *testing.T) {
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{})
	p, _ := startPipeline(t, s)
	rs := makeRecords(1, 11_000_000, "huge")
	emit(t, p, rs)
	waitFor(t, "the message", func() bool { _, msgs := srv.stats(); return len(msgs) == 1 })
	reqs, msgs := srv.stats()
	for _, r := range reqs {
		if r.bytes > MaxRequestBytes {
			t.Errorf("request of %d bytes over the 10 MB limit", r.bytes)
		}
	}
	m := msgs[0]
	if m.Attributes[attrTruncated] != "true" || proto.Size(m) > s.opts.MaxMessageBytes || proto.Size(m) < s.opts.MaxMessageBytes-64 {
		t.Errorf("message of %d bytes, attributes %v: want truncated to just under %d", proto.Size(m), m.Attributes, s.opts.MaxMessageBytes)
	}
}

// TestSendRefusesOversizeMessage: a message over the limit that reaches Send anyway (a caller
// that ignores Limits) is reported as a permanent record error, not sent, not truncated.
func TestSendRefusesOversizeMessage(t *testing.T) {
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{MaxMessageBytes: 2048})
	rs := makeRecords(3, 50, "big")
	rs[1].Message = bytes.Repeat([]byte("x"), 4000)
	err := send(t, s, rs)
	var re *collector.RecordErrors
	if !asRecordErrors(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 || len(re.Retry) != 0 ||
		collector.ErrorReason(re.Failed[0].Err) != reasonOversize {
		t.Fatalf("err %v, want a permanent oversize error for index 1", err)
	}
	if _, msgs := srv.stats(); len(msgs) != 2 {
		t.Errorf("server got %d messages, want the 2 that fit", len(msgs))
	}
	// A batch of nothing but oversize records is a permanent batch error, never a retry.
	if err := send(t, s, rs[1:2]); !collector.IsPermanent(err) || collector.ErrorReason(err) != reasonOversize {
		t.Errorf("err %v, want permanent with reason oversize", err)
	}
}
