package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// TestTraceTree: with -trace-frac, the manifest's counts hold both ways: every physical
// record once (total_records, no joining), and with tailgate's built-in detectors each trace
// joined into exactly one record (total_records_joined).
func TestTraceTree(t *testing.T) {
	rules, err := multiline.Compile(multiline.Config{Detect: []string{"java", "python", "go"}, FlushAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"cri", "docker"} {
		t.Run(format, func(t *testing.T) {
			c := smallConfig(t.TempDir(), format, 3)
			c.TraceFrac = 0.05
			m, err := generate(c)
			if err != nil {
				t.Fatal(err)
			}
			if m.Payload != "mixed" || m.TotalTraces == 0 || m.TotalTraceLines <= m.TotalTraces {
				t.Fatalf("manifest: payload %s, %d traces of %d lines", m.Payload, m.TotalTraces, m.TotalTraceLines)
			}
			share := float64(m.TotalTraces) / float64(m.TotalRecordsJoined)
			if share < 0.03 || share > 0.07 {
				t.Errorf("traces are %.3f of the records, want about 0.05", share)
			}
			var records, joined, traces int64
			for _, f := range m.Files {
				r, j, tr := joinFile(t, f.Path, format, rules)
				records, joined, traces = records+r, joined+j, traces+tr
			}
			if records != m.TotalRecords || joined != m.TotalRecordsJoined || traces != m.TotalTraces {
				t.Errorf("read %d records, %d joined, %d traces; manifest %d, %d, %d",
					records, joined, traces, m.TotalRecords, m.TotalRecordsJoined, m.TotalTraces)
			}
		})
	}
}

// joinFile reads a log, joins partials, and counts logical records, records after multiline
// joining per stream, and joined records of more than one line.
func joinFile(t *testing.T, path, format string, rules *multiline.Rules) (records, joined, traces int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	joiners := map[string]*multiline.Joiner{"stdout": multiline.NewJoiner(rules), "stderr": multiline.NewJoiner(rules)}
	partial := map[string][]byte{}
	count := func(d multiline.Done) {
		if d.Lines > 0 {
			joined++
			if d.Lines > 1 {
				traces++
			}
		}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line = line[:len(line)-1]
		var stream, text string
		var last bool
		if format == "cri" {
			parts := strings.SplitN(string(line), " ", 4)
			stream, last, text = parts[1], parts[2] == "F", parts[3]
		} else {
			var d struct{ Log, Stream string }
			if err := json.Unmarshal(line, &d); err != nil {
				t.Fatal(err)
			}
			stream, last, text = d.Stream, strings.HasSuffix(d.Log, "\n"), strings.TrimSuffix(d.Log, "\n")
		}
		partial[stream] = append(partial[stream], text...)
		if !last {
			continue
		}
		records++
		d, p := joiners[stream].Feed(partial[stream])
		count(d)
		if p == multiline.Alone {
			joined++
		}
		partial[stream] = partial[stream][:0]
	}
	for _, j := range joiners {
		d, _ := j.Flush()
		count(d)
	}
	return records, joined, traces
}
