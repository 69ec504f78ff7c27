package cloudlogging

import (
	"testing"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/collector"
)

// offlineSink is a sink without a client, for what does not send: the entry builder and
// RecordBytes.
func offlineSink(t testing.TB, opts Options) *Sink {
	t.Helper()
	set, err := opts.settings()
	if err != nil {
		t.Fatal(err)
	}
	set.entry.project = testProject
	m, err := newMetrics(nil, "logging")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{name: "logging", project: testProject, set: set, metrics: m,
		headers: headerCache{project: testProject, location: testLocation, cluster: testCluster, node: "node-1"}}
	s.clock = func() time.Time { return testNow }
	s.limits.MaxRecordBytes = set.MaxEntryBytes
	s.scratch.New = func() any { return &sendScratch{enc: entryEncoder{cfg: &s.set.entry}} }
	return s
}

// FuzzEntry builds the entry of a record with an arbitrary message and fields (random JSON,
// invalid UTF-8, truncated escapes, deep nesting) and checks: no panic; the bytes are a valid
// LogEntry with valid UTF-8 (what the API parses); RecordBytes bounds the entry, so an entry
// the pipeline lets through is within the API's limit; a text payload of valid UTF-8 is the
// message byte for byte.
func FuzzEntry(f *testing.F) {
	f.Add([]byte(`{"severity":"warn","message":"m","httpRequest":{"status":200,"latency":"1.5s","x":1}}`), []byte(nil), uint8(1))
	f.Add([]byte("plain \xff text"), []byte(`{"level":"error"}`), uint8(2))
	f.Add([]byte(`{"a":[1,2,{"b":null}],"logging.googleapis.com/labels":{"k":"v","n":1}}`), []byte(nil), uint8(1))
	f.Add([]byte("m"), []byte(`{"message":"m","k":[true,false]}`), uint8(3))
	f.Add([]byte(`{"s":"\ud800\udc00 \ud800 \u00e9","time":"2026-11-23T03:00:00Z"}`), []byte(nil), uint8(1))
	s := offlineSink(f, Options{})
	f.Fuzz(func(t *testing.T, msg, fields []byte, stream uint8) {
		r := rec(0, collector.Stream(stream%4), "")
		r.Message = msg
		r.Fields = fields
		sc := s.scratch.Get().(*sendScratch)
		defer s.scratch.Put(sc)
		sc.enc.now = testNow.UnixNano()
		sc.enc.labelRoom = maxLabels - s.headers.get(kubeOf(r)).labels
		b, _ := sc.enc.appendEntry(sc.req[:0], r)
		sc.req = b[:0]
		var e loggingpb.LogEntry
		if err := proto.Unmarshal(b, &e); err != nil {
			t.Fatalf("entry does not parse: %v\nmessage %q fields %q", err, msg, fields)
		}
		if bound := s.recordBytes(r); len(b) > bound {
			t.Fatalf("entry of %d bytes, RecordBytes %d", len(b), bound)
		}
		if e.GetPayload() == nil {
			t.Fatalf("no payload for %q", msg)
		}
		if tp, ok := e.GetPayload().(*loggingpb.LogEntry_TextPayload); ok && utf8.Valid(msg) && len(fields) == 0 && tp.TextPayload != string(msg) {
			t.Fatalf("textPayload %q, message %q", tp.TextPayload, msg)
		}
	})
}
