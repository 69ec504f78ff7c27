package cloudlogging

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/collector"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt want sections from what the fake received")

// goldenRecord is the record section of a golden case.
type goldenRecord struct {
	Stream string          `json:"stream"` // stdout | stderr | app
	Time   string          `json:"time"`   // RFC 3339; default testNow
	Tag    string          `json:"tag"`
	Fields json.RawMessage `json:"fields"` // the record's Fields, as JSON
	Part   int             `json:"part"`   // > 0: part N of a split record
	Parts  uint32          `json:"parts"`  // of a split record: how many parts (0: unknown)
	NoKube bool            `json:"no_kube"`
}

// TestGolden sends each testdata/golden case's record through the sink into the fake and
// compares the entry the fake stored (request-level fields merged, as a query returns it) with
// the case's want section. Each case is a file of sections:
//
//	-- record --   JSON: stream, time, tag, fields, part, no_kube
//	-- message --  the message, byte for byte (the final newline is not part of it)
//	-- want --     the LogEntry as protojson (receiveTimestamp left out)
//
// Run with -update to rewrite the want sections, then read the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sec := sections(data)
			var gr goldenRecord
			if err := json.Unmarshal(sec["record"], &gr); err != nil {
				t.Fatalf("record section: %v", err)
			}
			r := goldenToRecord(t, gr, bytes.TrimSuffix(sec["message"], []byte("\n")))
			before := f.Len()
			if err := send(t, s, r); err != nil {
				t.Fatal(err)
			}
			all := f.Entries()
			if len(all) != before+1 {
				t.Fatalf("fake has %d new entries, want 1", len(all)-before)
			}
			got := all[before]
			got.ReceiveTimestamp = nil
			if *update {
				out, _ := protojson.Marshal(got)
				var ind bytes.Buffer
				json.Indent(&ind, out, "", "  ")
				data = replaceSection(data, "want", append(ind.Bytes(), '\n'))
				if err := os.WriteFile(file, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := &loggingpb.LogEntry{}
			if err := protojson.Unmarshal(sec["want"], want); err != nil {
				t.Fatalf("want section: %v", err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("entry differs\n got: %s\nwant: %s", entryJSON(got), entryJSON(want))
			}
		})
	}
}

func goldenToRecord(t *testing.T, gr goldenRecord, msg []byte) *collector.Record {
	t.Helper()
	r := rec(0, collector.StreamStdout, "")
	r.Message = msg
	switch gr.Stream {
	case "", "stdout":
	case "stderr":
		r.Stream = collector.StreamStderr
	case "app":
		r.Stream = collector.StreamApp
	default:
		t.Fatalf("stream %q", gr.Stream)
	}
	if gr.Time != "" {
		ts, err := time.Parse(time.RFC3339Nano, gr.Time)
		if err != nil {
			t.Fatal(err)
		}
		r.Time = ts.UnixNano()
	}
	r.Tag = []byte(gr.Tag)
	if len(gr.Fields) > 0 {
		r.Fields = []byte(gr.Fields)
	}
	if gr.Part > 0 {
		r.ID = r.ID.Part(gr.Part)
		r.Flags |= collector.FlagPart
		r.Parts = gr.Parts
	}
	if gr.NoKube {
		r.Source = collector.NewSource(9, "apps", nil)
	}
	return r
}

// sections splits a golden file into its "-- name --" sections.
func sections(data []byte) map[string][]byte {
	out := map[string][]byte{}
	name := ""
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		if bytes.HasPrefix(line, []byte("-- ")) && bytes.HasSuffix(line, []byte(" --")) {
			name = string(line[3 : len(line)-3])
			out[name] = []byte{}
		} else if name != "" {
			out[name] = append(out[name], line...)
			if len(rest) > 0 || bytes.HasSuffix(data, []byte("\n")) {
				out[name] = append(out[name], '\n')
			}
		}
		data = rest
	}
	return out
}

// replaceSection returns data with section name's content replaced (appended if missing).
func replaceSection(data []byte, name string, content []byte) []byte {
	marker := []byte("-- " + name + " --\n")
	i := bytes.Index(data, marker)
	if i < 0 {
		return append(append(data, marker...), content...)
	}
	start := i + len(marker)
	end := bytes.Index(data[start:], []byte("\n-- "))
	tail := []byte{}
	if end >= 0 {
		tail = data[start+end+1:]
	}
	out := append([]byte{}, data[:start]...)
	out = append(out, content...)
	return append(out, tail...)
}
