package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type outRecord struct {
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	Message string `json:"message"`
	Fields  struct {
		Level string `json:"level"`
	} `json:"fields"`
}

// readOut reads the file sink's envelopes, by id (a record written twice, by a sink replay
// after a kill, must be the same record).
func readOut(t *testing.T, path string) (map[string]outRecord, []string) {
	t.Helper()
	byID := map[string]outRecord{}
	var order []string
	f, err := os.Open(path)
	if err != nil {
		return byID, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var r outRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line still being written
		}
		if prev, ok := byID[r.ID]; ok {
			if prev != r {
				t.Fatalf("id %s written twice with different records: %+v and %+v", r.ID, prev, r)
			}
			continue
		}
		byID[r.ID] = r
		order = append(order, r.ID)
	}
	return byID, order
}

// TestCrashMidTrace SIGKILLs the agent while a Java stack trace is held half read (its first
// lines read, the rest not yet written), writes the rest, restarts the agent, and checks the
// trace arrives once, whole, with the id of its first line's position, and that level
// detection marks it an error.
func TestCrashMidTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	a := newAgentProc(t, dir, fmt.Sprintf(`node_name: crash
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: ""}
buffer: {sync: 50ms, segment_bytes: 1MiB, max_bytes: 64MiB}
inputs:
  - name: pods
    type: tail
    paths: ["%s/containers/*.log"]
    poll_interval: 20ms
    detect_level: true
    multiline: {detect: [java, python], flush_after: 1h}
sinks:
  - {name: local, type: file, path: %s}
`, dir, dir, out))
	w := newCrashWriter(t, dir, 1)
	cf := w.files[0]
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	writeCRI := func(stream string, lines ...string) {
		for _, l := range lines {
			if _, err := fmt.Fprintf(cf.f, "%s %s F %s\n", ts, stream, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := []string{"java.lang.IllegalStateException: payment service unavailable",
		"\tat com.example.shop.Payments.charge(Payments.java:88)",
		"\tat com.example.shop.Checkout.run(Checkout.java:41)"}
	rest := []string{"Caused by: java.net.ConnectException: Connection refused",
		"\tat java.base/sun.nio.ch.Net.connect0(Native Method)",
		"\t... 12 more"}

	writeCRI("stdout", "INFO started")
	st, err := os.Stat(cf.path)
	if err != nil {
		t.Fatal(err)
	}
	traceOff := st.Size() // the trace's first line starts here
	writeCRI("stderr", head...)
	writeCRI("stdout", "GET /checkout 500")

	a.start()
	waitFor := func(what string, cond func(map[string]outRecord) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ := readOut(t, out)
			if cond(got) {
				return
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
				t.Fatalf("timed out waiting for %s; output %v\nagent log tail:\n%s", what, got, lastBytes(string(log), 3000))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	has := func(msg string) func(map[string]outRecord) bool {
		return func(got map[string]outRecord) bool {
			for _, r := range got {
				if r.Message == msg {
					return true
				}
			}
			return false
		}
	}
	// The stdout line after the trace's head is in the buffer: the frame holding it also
	// holds the positions, with stderr held at the trace's first line.
	waitFor("the stdout lines", has("GET /checkout 500"))
	a.kill()

	writeCRI("stderr", rest...)
	writeCRI("stderr", "INFO recovered")
	a.start()
	waitFor("the line after the trace", has("INFO recovered"))
	a.stop()

	got, order := readOut(t, out)
	trace := strings.Join(append(append([]string(nil), head...), rest...), "\n")
	var msgs []string
	var traceRec, first outRecord
	for _, id := range order {
		r := got[id]
		msgs = append(msgs, r.Message)
		if r.Message == trace {
			traceRec = r
		}
		if r.Message == "INFO started" {
			first = r
		}
	}
	want := []string{"INFO started", "GET /checkout 500", trace, "INFO recovered"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("records:\n%q\nwant\n%q", msgs, want)
	}
	// id = file generation key (16 hex digits, shared with the file's other records) + offset.
	if traceRec.ID[:16] != first.ID[:16] {
		t.Errorf("trace id %s is not of the file's generation (%s)", traceRec.ID, first.ID)
	}
	if off, err := strconv.ParseUint(traceRec.ID[16:], 16, 64); err != nil || int64(off) != traceOff {
		t.Errorf("trace id %s: offset %d, want the first line's %d", traceRec.ID, off, traceOff)
	}
	if traceRec.Stream != "stderr" || traceRec.Fields.Level != "error" {
		t.Errorf("trace record %+v: want stream stderr, level error", traceRec)
	}
	if got[first.ID].Fields.Level != "info" {
		t.Errorf("INFO line level %q", got[first.ID].Fields.Level)
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
