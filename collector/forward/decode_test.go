package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 123456789, time.UTC)

// decodeAll decodes frame with a fresh decoder and returns the envelopes it emitted.
func decodeAll(frame []byte) (envs []string, recs []collector.Record, chunk string, err error) {
	e := newFakeEmitter()
	d := decoder{src: collector.NewSource(7, "apps", nil), key: 7, maxUnpacked: 1 << 20}
	d.flush = func(b *collector.Batch) error { _, err := e.Emit(nil, b); return err }
	c, err := d.decode(frame)
	return e.envs, e.records, string(c), err
}

func TestDecodeModes(t *testing.T) {
	rec := func(i int) []byte { return record(nil, "log", "line "+string(rune('a'+i)), "n", i) }
	entries := func(fluentBit bool) [][]byte {
		var es [][]byte
		for i := range 3 {
			es = append(es, entry(t0.Add(time.Duration(i)*time.Second), rec(i), fluentBit))
		}
		return es
	}
	want3 := []string{
		`{"id":"000000000000000a0000000000000000","time":"2026-11-23T03:00:00.123456789Z","stream":"app","message":"line a","source":"apps","tag":"app.web","kubernetes":{},"fields":{"log":"line a","n":0}}`,
		`{"id":"000000000000000a0000000000000001","time":"2026-11-23T03:00:01.123456789Z","stream":"app","message":"line b","source":"apps","tag":"app.web","kubernetes":{},"fields":{"log":"line b","n":1}}`,
		`{"id":"000000000000000a0000000000000002","time":"2026-11-23T03:00:02.123456789Z","stream":"app","message":"line c","source":"apps","tag":"app.web","kubernetes":{},"fields":{"log":"line c","n":2}}`,
	}
	chunkID := "c1"
	// ids of chunked frames are (hash64(chunk), index): patch the key into the expectations.
	withChunk := func(envs []string) []string {
		key := collector.MakeID(hash64([]byte(chunkID)), 0).String()[:16]
		out := make([]string, len(envs))
		for i, e := range envs {
			out[i] = strings.Replace(e, "000000000000000a", key, 1)
		}
		return out
	}
	noChunk := func(envs []string) []string {
		out := make([]string, len(envs))
		for i, e := range envs {
			out[i] = strings.Replace(e, "000000000000000a", "0000000000000007", 1)
		}
		return out
	}
	cases := []struct {
		name  string
		frame []byte
		want  []string
		chunk string
	}{
		{"message", messageFrame("app.web", t0, rec(0), option(nil, chunkID)), withChunk(want3[:1]), chunkID},
		{"message with fluent-bit time", fluentBitMessage("app.web", t0, rec(0), option(nil, chunkID)), withChunk(want3[:1]), chunkID},
		{"message without option", messageFrame("app.web", t0, rec(0), nil), noChunk(want3[:1]), ""},
		{"forward", forwardFrame("app.web", entries(false), option(nil, chunkID, "size", 3)), withChunk(want3), chunkID},
		{"forward without chunk", forwardFrame("app.web", entries(false), option(nil, "")), noChunk(want3), ""},
		{"forward fluent-bit metadata", forwardFrame("app.web", entries(true), option(nil, chunkID, "fluent_signal", 0)), withChunk(want3), chunkID},
		{"packed", packedFrame("app.web", entries(false), option(nil, chunkID, "size", 3), 0), withChunk(want3), chunkID},
		{"packed fluent-bit", packedFrame("app.web", entries(true), option(nil, chunkID), 0), withChunk(want3), chunkID},
		{"compressed", packedFrame("app.web", entries(false), option(nil, chunkID, "compressed", "gzip"), 1), withChunk(want3), chunkID},
		{"compressed members", packedFrame("app.web", entries(false), option(nil, chunkID, "compressed", "gzip", "size", 99), 3), withChunk(want3), chunkID},
		{"compressed hint without gzip", packedFrame("app.web", entries(false), option(nil, chunkID, "compressed", "gzip"), 0), withChunk(want3), chunkID},
		{"gzip without hint", packedFrame("app.web", entries(false), option(nil, chunkID), 2), withChunk(want3), chunkID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			envs, _, chunk, err := decodeAll(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if chunk != tc.chunk {
				t.Errorf("chunk %q, want %q", chunk, tc.chunk)
			}
			if strings.Join(envs, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(envs, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeTimes(t *testing.T) {
	f := func(name string, appendTime func([]byte) []byte, want string) {
		t.Helper()
		b := msgp.AppendArrayHeader(nil, 3)
		b = msgp.AppendString(b, "t")
		b = appendTime(b)
		b = record(b, "a", 1)
		_, recs, _, err := decodeAll(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := string(collector.AppendTime(nil, recs[0].Time)); got != want {
			t.Errorf("%s: time %s, want %s", name, got, want)
		}
	}
	f("int", func(b []byte) []byte { return msgp.AppendInt64(b, t0.Unix()) }, "2026-11-23T03:00:00.000000000Z")
	f("uint", func(b []byte) []byte { return msgp.AppendUint64(b, uint64(t0.Unix())) }, "2026-11-23T03:00:00.000000000Z")
	f("float", func(b []byte) []byte { return msgp.AppendFloat64(b, float64(t0.Unix())+0.25) }, "2026-11-23T03:00:00.250000000Z")
	f("event time", func(b []byte) []byte { return eventTime(b, t0) }, "2026-11-23T03:00:00.123456789Z")
	f("event time ext8", func(b []byte) []byte {
		e := eventTime(nil, t0)
		return append(append(b, 0xc7, 8, 0), e[2:]...)
	}, "2026-11-23T03:00:00.123456789Z")
	f("msgpack timestamp", func(b []byte) []byte { return timestamp96(b, t0) }, "2026-11-23T03:00:00.123456789Z")
}

func TestDecodeMessageKey(t *testing.T) {
	f := func(rec []byte, want string) {
		t.Helper()
		_, recs, _, err := decodeAll(messageFrame("t", t0, rec, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(recs[0].Message); got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}
	f(record(nil, "msg", "c", "log", "b", "message", "a"), "a")
	f(record(nil, "msg", "c", "log", "b"), "b")
	f(record(nil, "msg", "c"), "c")
	f(record(nil, "log", []byte("from bin")), "from bin")
	f(record(nil, "message", 5, "log", "b"), "b") // not a string: next key
	f(record(nil, "other", "x"), "")
}

func TestDecodeBadFrames(t *testing.T) {
	good := record(nil, "a", 1)
	f := func(name string, frame []byte) {
		t.Helper()
		_, _, _, err := decodeAll(frame)
		if err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	f("not an array", msgp.AppendString(nil, "x"))
	f("one element", msgp.AppendString(msgp.AppendArrayHeader(nil, 1), "t"))
	f("tag not string", append(msgp.AppendInt(msgp.AppendArrayHeader(nil, 3), 1), append(eventTime(nil, t0), good...)...))
	f("record not map", messageFrame("t", t0, msgp.AppendString(nil, "x"), nil))
	f("time is nil", append(msgp.AppendNil(msgp.AppendString(msgp.AppendArrayHeader(nil, 3), "t")), good...))
	f("time is bool", append(msgp.AppendBool(msgp.AppendString(msgp.AppendArrayHeader(nil, 3), "t"), true), good...))
	f("entry not array", forwardFrame("t", [][]byte{msgp.AppendInt(nil, 1)}, nil))
	f("entry record not map", forwardFrame("t", [][]byte{entry(t0, msgp.AppendInt(nil, 1), false)}, nil))
	f("packed garbage", packedFrame("t", [][]byte{{0xc1, 0xc1}}, nil, 0))
	f("packed truncated", packedFrame("t", [][]byte{entry(t0, good, false)[:5]}, nil, 0))
	f("bad gzip", packedFrame("t", [][]byte{{0x1f, 0x8b, 0, 1, 2}}, nil, 0))
	f("option not map", append(messageFrame("t", t0, good, nil)[:0:0], append(msgp.AppendString(msgp.AppendArrayHeader(nil, 4), "t"), append(append(eventTime(nil, t0), good...), msgp.AppendInt(nil, 3)...)...)...))
}

func TestDecodeSplitsLargeFrames(t *testing.T) {
	var es [][]byte
	for i := range maxBatchRecords + 10 {
		es = append(es, entry(t0, record(nil, "i", i), false))
	}
	e := newFakeEmitter()
	d := decoder{src: collector.NewSource(1, "apps", nil), key: 1, maxUnpacked: 1 << 20}
	d.flush = func(b *collector.Batch) error { _, err := e.Emit(nil, b); return err }
	if _, err := d.decode(packedFrame("t", es, option(nil, "big"), 0)); err != nil {
		t.Fatal(err)
	}
	if e.batches != 2 || len(e.records) != maxBatchRecords+10 {
		t.Fatalf("%d batches, %d records", e.batches, len(e.records))
	}
	last := e.records[len(e.records)-1]
	if got, want := last.ID, collector.MakeID(hash64([]byte("big")), maxBatchRecords+9); got != want {
		t.Errorf("last id %s, want %s", got, want)
	}
	if string(last.Fields) != `{"i":4105}` {
		t.Errorf("last fields %s", last.Fields)
	}
}

func TestGunzipLimit(t *testing.T) {
	big := record(nil, "x", strings.Repeat("a", 4096))
	var es [][]byte
	for range 300 {
		es = append(es, entry(t0, big, false))
	}
	e := newFakeEmitter()
	d := decoder{src: collector.NewSource(1, "apps", nil), maxUnpacked: 1 << 20}
	d.flush = func(b *collector.Batch) error { _, err := e.Emit(nil, b); return err }
	_, err := d.decode(packedFrame("t", es, nil, 1))
	fe, ok := err.(*frameError)
	if !ok || fe.reason != reasonTooLarge {
		t.Fatalf("err %v, want too_large", err)
	}
}
