package pubsub

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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

func TestOversizeTruncate(t *testing.T) {
	srv, addr := newAckServer(t, true)
	const limit = 2048
	s := newTestSink(t, addr, testTopic, Options{MaxMessageBytes: limit})
	rs := makeRecords(4, 50, "fit")
	rs[1].Message = bytes.Repeat([]byte("é\n"), 3000)                     // escapes and multibyte runes
	rs[2].Fields = []byte(`{"blob":"` + strings.Repeat("z", 5000) + `"}`) // only dropping fields helps
	rs[2].Tag = []byte("app.tag")
	if err := send(t, s, rs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, msgs := srv.stats()
	if len(msgs) != len(rs) {
		t.Fatalf("server got %d messages, want %d", len(msgs), len(rs))
	}
	for _, m := range msgs {
		if size := proto.Size(m); size > limit {
			t.Errorf("message %s is %d bytes, over %d", m.Attributes["id"], size, limit)
		}
		var env envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("data is not JSON: %v\n%s", err, m.Data)
		}
		want := rs[idIndex(t, rs, env.ID)]
		truncated := m.Attributes["truncated"] == "true"
		if truncated != (want == rs[1] || want == rs[2]) {
			t.Errorf("record %s: truncated attribute %v", env.ID, truncated)
		}
		if !strings.HasPrefix(string(want.Message), env.Message) {
			t.Errorf("record %s: message is not a prefix of the original", env.ID)
		}
		if size := proto.Size(m); want == rs[1] && size < limit-16 {
			t.Errorf("record 1: cut to %d bytes, want as many whole characters as fit in %d", size, limit)
		}
		if want == rs[2] && (string(env.Fields) != "{}" || env.Tag != "app.tag" || env.Message != string(want.Message)) {
			t.Errorf("record 2: fields %s tag %q message %q, want fields dropped, the rest kept", env.Fields, env.Tag, env.Message)
		}
	}
	if s.Truncated() != 2 {
		t.Errorf("Truncated() = %d, want 2", s.Truncated())
	}
	if rs[1].Flags&collector.FlagTruncated != 0 {
		t.Errorf("the caller's record was modified")
	}
}

func idIndex(t *testing.T, rs []*collector.Record, id string) int {
	t.Helper()
	for i, r := range rs {
		if r.ID.String() == id {
			return i
		}
	}
	t.Fatalf("unknown id %s", id)
	return -1
}

func TestOversizeDeadLetter(t *testing.T) {
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{MaxMessageBytes: 2048, Oversize: OversizeDeadLetter})
	rs := makeRecords(3, 50, "dl")
	rs[1].Message = bytes.Repeat([]byte("x"), 4000)
	err := send(t, s, rs)
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 || !errors.Is(re.Failed[0].Err, errOversize) {
		t.Fatalf("err %v, want RecordErrors for index 1", err)
	}
	if _, msgs := srv.stats(); len(msgs) != 2 {
		t.Errorf("server got %d messages, want the 2 that fit", len(msgs))
	}
	if s.Oversized() != 1 {
		t.Errorf("Oversized() = %d, want 1", s.Oversized())
	}
	// A batch of nothing but oversize records is a permanent batch error, never a retry.
	if err := send(t, s, rs[1:2]); !collector.IsPermanent(err) {
		t.Errorf("err %v, want permanent", err)
	}
}

// TestRecordOverTenMegabytes sends a record over the real service limit with the default
// options: it must arrive truncated within the limit, not loop and not be refused.
func TestRecordOverTenMegabytes(t *testing.T) {
	srv, addr := newAckServer(t, true)
	s := newTestSink(t, addr, testTopic, Options{})
	rs := makeRecords(1, 11_000_000, "huge")
	if err := send(t, s, rs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs, msgs := srv.stats()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	for _, r := range reqs {
		if r.bytes > MaxRequestBytes {
			t.Errorf("request of %d bytes over the 10 MB limit", r.bytes)
		}
	}
	for _, m := range msgs {
		if m.Attributes["truncated"] != "true" || len(m.Data) < 9_900_000 {
			t.Errorf("message of %d bytes, attributes %v: want truncated near 10 MB", len(m.Data), m.Attributes)
		}
	}
}
