package tail

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// goldenConfig builds the input config a golden .want header asks for.
func goldenConfig(t *testing.T, glob string, opts map[string]string) collector.InputConfig {
	cfg := collector.InputConfig{Paths: []string{glob}}
	cfg.MaxLineBytes = collector.Size(atoi(t, opts["max_line_bytes"]))
	cfg.DetectLevel = opts["detect_level"] == "true"
	if d := opts["multiline"]; d != "" {
		cfg.Multiline.Detect = strings.Split(d, ",")
	}
	cfg.Multiline.Start = opts["ml_start"]
	cfg.Multiline.MaxLines = atoi(t, opts["max_lines"])
	cfg.Multiline.FlushAfter = collector.Duration(50 * time.Millisecond)
	return cfg
}

// TestMultilineCrashAtEveryBatch runs golden multiline cases with one record per batch, then
// "crashes" after each batch: a new input starts from the state that batch made durable. What
// the first run emitted up to the crash plus what the restart emits must be exactly the
// records of an uninterrupted run: traces held at the crash are read and joined again, with
// the same ids, and nothing emitted before the crash comes out twice.
func TestMultilineCrashAtEveryBatch(t *testing.T) {
	for _, name := range []string{"ml_java", "ml_python", "ml_node", "ml_go", "ml_java_partials16k", "ml_docker_python", "ml_custom_cut"} {
		t.Run(name, func(t *testing.T) {
			want, opts, _ := readWant(t, filepath.Join("testdata", "golden", name+".want"))
			content, err := os.ReadFile(filepath.Join("testdata", "golden", name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "pods", "shop_cart-1_uid-1", "app", "0.log"), string(content))
			cfg := goldenConfig(t, filepath.Join(dir, "pods", "*", "*", "*.log"), opts)

			in := testInput(t, cfg)
			in.flushRecords = 1
			em := newFakeEmitter(nil)
			em.keepSnaps = true
			stop := start(t, in, em)
			em.waitRecords(t, len(want))
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			full := em.snapshot()
			checkUniqueIDs(t, full)
			snaps := em.snaps
			if len(snaps) < 3 {
				t.Fatalf("only %d batches", len(snaps))
			}
			// At most about 12 crash points per case, spread over the run, to keep it quick.
			step := max(1, len(snaps)/12)
			for i := 0; i < len(snaps); i += step {
				snap := snaps[i]
				if snap.records == len(full) {
					break
				}
				em2 := newFakeEmitter(maps.Clone(snap.state))
				in2 := testInput(t, cfg)
				stop2 := start(t, in2, em2)
				em2.waitRecords(t, len(full)-snap.records)
				if err := stop2(); err != nil {
					t.Fatal(err)
				}
				got := append(append([]gotRecord(nil), full[:snap.records]...), em2.snapshot()...)
				if err := sameRecords(full, got); err != nil {
					t.Fatalf("crash after batch %d (%d records emitted): %v", i, snap.records, err)
				}
			}
		})
	}
}

// sameRecords compares two runs by id: same ids, same messages, stream and flags, no duplicates.
func sameRecords(want, got []gotRecord) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d records, want %d", len(got), len(want))
	}
	byID := make(map[collector.ID]gotRecord, len(want))
	for _, r := range want {
		byID[r.ID] = r
	}
	seen := make(map[collector.ID]bool)
	for _, r := range got {
		w, ok := byID[r.ID]
		switch {
		case seen[r.ID]:
			return fmt.Errorf("id %s twice (%.60q)", r.ID, r.Message)
		case !ok:
			return fmt.Errorf("unexpected record %s %.80q", r.ID, r.Message)
		case w.Message != r.Message || w.Stream != r.Stream || w.Flags != r.Flags || w.Fields != r.Fields:
			return fmt.Errorf("record %s: got %.80q (flags %d), want %.80q (flags %d)", r.ID, r.Message, r.Flags, w.Message, w.Flags)
		}
		seen[r.ID] = true
	}
	return nil
}

const javaTrace = "java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n\tat a.B.e(B.java:3)"

func criOf(stream, text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%s %s F %s\n", ts, stream, l)
	}
	return b.String()
}

// TestMultilineRotationMidTrace: the runtime rotates the log (rename, new file) between two
// lines of a trace. The trace is one record with the id of its first line, whether the agent
// runs through the rotation or is stopped in the middle and restarted after it.
func TestMultilineRotationMidTrace(t *testing.T) {
	lines := strings.Split(javaTrace, "\n")
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			tr := newKubeTree(t)
			real := tr.add(t, "shop", "cart", "app", criOf("stdout", "before")+criOf("stderr", strings.Join(lines[:2], "\n")))
			cfg := collector.InputConfig{Paths: []string{tr.glob()},
				Multiline: collector.MultilineConfig{Detect: []string{"java"}, FlushAfter: collector.Duration(time.Hour)}}
			in := testInput(t, cfg)
			em := newFakeEmitter(nil)
			stop := start(t, in, em)
			em.waitRecords(t, 1)
			waitFor(t, "the held trace's position", func() bool { return heldPositionSaved(em, real) })
			if restart {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Rename(real, real+".20261123-030000"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, real, criOf("stderr", strings.Join(lines[2:], "\n"))+criOf("stderr", "after"))
			if restart {
				in2 := testInput(t, cfg)
				em2 := newFakeEmitter(em.State())
				em2.records = em.snapshot()
				em = em2
				stop = start(t, in2, em)
			}
			got := em.waitRecords(t, 3)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got = em.snapshot()
			equalMessages(t, got, []string{"before", javaTrace, "after"})
			checkUniqueIDs(t, got)
			rotatedKey := got[0].ID[:8]
			if string(got[1].ID[:8]) != string(rotatedKey) {
				t.Errorf("trace id %s is not of the rotated file (%x)", got[1].ID, rotatedKey)
			}
		})
	}
}

// heldPositionSaved reports whether a position for real was saved that holds at a line after
// the file's first (the trace's first line), below the end of what was read.
func heldPositionSaved(em *fakeEmitter, real string) bool {
	em.mu.Lock()
	defer em.mu.Unlock()
	for _, v := range em.state {
		if sv, err := decodeSaved(v); err == nil && sv.path == real && sv.hold[1] > 0 && sv.hold[1] < sv.skip {
			return true
		}
	}
	return false
}

// TestMultilineTraceAtEOF: a trace that is the last thing a container writes goes out after
// flush_after, with no line after it; the input keeps no busy loop while it waits.
func TestMultilineTraceAtEOF(t *testing.T) {
	tr := newKubeTree(t)
	tr.add(t, "shop", "cart", "app", criOf("stderr", javaTrace))
	cfg := collector.InputConfig{Paths: []string{tr.glob()}, PollInterval: collector.Duration(time.Hour),
		Multiline: collector.MultilineConfig{Detect: []string{"java"}, FlushAfter: collector.Duration(100 * time.Millisecond)}}
	in := testInput(t, cfg)
	em := newFakeEmitter(nil)
	stop := start(t, in, em)
	got := em.waitRecords(t, 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	equalMessages(t, got, []string{javaTrace})
}

// TestMultilineChooser: a per-container choice (what a pod annotation would drive) replaces
// the input's rules for that container only: here one pod joins Python tracebacks, another
// joins nothing, the rest keep the configured Java rules.
func TestMultilineChooser(t *testing.T) {
	py := "Traceback (most recent call last):\n  File \"/app/x.py\", line 1, in <module>\nKeyError: 'id'"
	tr := newKubeTree(t)
	tr.add(t, "shop", "py", "app", criOf("stderr", py+"\n"+javaTrace+"\nend"))
	tr.add(t, "shop", "plain", "app", criOf("stderr", javaTrace+"\nend"))
	tr.add(t, "shop", "java", "app", criOf("stderr", py+"\n"+javaTrace+"\nend"))
	cfg := collector.InputConfig{Paths: []string{tr.glob()},
		Multiline: collector.MultilineConfig{Detect: []string{"java"}, FlushAfter: collector.Duration(50 * time.Millisecond)}}
	in := testInput(t, cfg)
	pyRules, err := multiline.Compile(multiline.Config{Detect: []string{"python"}})
	if err != nil {
		t.Fatal(err)
	}
	in.SetMultilineChooser(func(k *collector.Kube, configured *multiline.Rules) *multiline.Rules {
		switch k.Pod {
		case "py":
			return pyRules
		case "plain":
			return nil
		}
		return configured
	})
	em := newFakeEmitter(nil)
	stop := start(t, in, em)
	pyLines, javaLines := strings.Split(py, "\n"), strings.Split(javaTrace, "\n")
	want := map[string][]string{
		"py":    append(append([]string{py}, javaLines...), "end"),
		"plain": append(append([]string(nil), javaLines...), "end"),
		"java":  append(append(append([]string(nil), pyLines...), javaTrace), "end"),
	}
	n := 0
	for _, w := range want {
		n += len(w)
	}
	em.waitRecords(t, n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	byPod := map[string][]gotRecord{}
	for _, r := range em.snapshot() {
		byPod[r.Kube.Pod] = append(byPod[r.Kube.Pod], r)
	}
	for pod, w := range want {
		t.Run(pod, func(t *testing.T) { equalMessages(t, byPod[pod], w) })
	}
}

// TestMultilineIdentity: a joined record carries the time and id (offset) of its FIRST line,
// not of a later one; a line held tentatively after a trace (a blank line) that turns out not
// to continue it comes out alone with its own time and id, also when flush_after releases it.
func TestMultilineIdentity(t *testing.T) {
	lines := []string{
		"INFO start",
		"Traceback (most recent call last):", // 1: chained traceback, one record
		`  File "/app/main.py", line 3, in <module>`,
		"ValueError: bad",
		"",
		"During handling of the above exception, another exception occurred:",
		"",
		"Traceback (most recent call last):",
		"KeyError: 'k'",
		"", // 9: released
		"INFO next",
		"/app/server.js:12", // 11: Node's preamble, tentative until "Error: boom"
		"    throw new Error('boom');",
		"    ^",
		"",
		"Error: boom",
		"    at f (/app/server.js:12:11)",
		"",
		"Node.js v20.11.0",
		"/app/config.js:7", // 19: looks like a preamble, is not
		"config loaded",
		"java.lang.Error: last", // 21
		"\tat a.B(C.java:1)",
		"", // 23: released by flush_after at the end of the file
	}
	// Each record: the index of its first line and of the line after its last.
	want := [][2]int{{0, 1}, {1, 9}, {9, 10}, {10, 11}, {11, 19}, {19, 20}, {20, 21}, {21, 23}, {23, 24}}

	var content strings.Builder
	offs, times := make([]uint64, len(lines)), make([]int64, len(lines))
	for i, l := range lines {
		stamp := fmt.Sprintf("2026-11-23T03:00:%02d.%09dZ", i, i*1000)
		tm, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			t.Fatal(err)
		}
		offs[i], times[i] = uint64(content.Len()), tm.UnixNano()
		fmt.Fprintf(&content, "%s stderr F %s\n", stamp, l)
	}
	tr := newKubeTree(t)
	tr.add(t, "shop", "api", "app", content.String())
	cfg := collector.InputConfig{Paths: []string{tr.glob()},
		Multiline: collector.MultilineConfig{Detect: []string{"python", "node", "java"}, FlushAfter: collector.Duration(50 * time.Millisecond)}}
	in := testInput(t, cfg)
	em := newFakeEmitter(nil)
	stop := start(t, in, em)
	em.waitRecords(t, len(want))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := em.snapshot()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %q", len(got), len(want), messagesOf(got))
	}
	for i, w := range want {
		r := got[i]
		if msg := strings.Join(lines[w[0]:w[1]], "\n"); r.Message != msg {
			t.Errorf("record %d: got %q, want %q", i, r.Message, msg)
		}
		if r.Time != times[w[0]] {
			t.Errorf("record %d (%.30q): time %s, want its first line's %s (last line's %s)", i, r.Message,
				time.Unix(0, r.Time).UTC(), time.Unix(0, times[w[0]]).UTC(), time.Unix(0, times[w[1]-1]).UTC())
		}
		if off := binary.BigEndian.Uint64(r.ID[8:]); off != offs[w[0]] {
			t.Errorf("record %d (%.30q): id offset %d, want its first line's %d", i, r.Message, off, offs[w[0]])
		}
	}
	checkUniqueIDs(t, got)
}
