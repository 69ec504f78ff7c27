package tail

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tailgate-dev/tailgate/collector"
)

const ts = "2026-11-23T03:00:00.123456789Z"

func criLines(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s stdout F %s %d\n", ts, prefix, i)
	}
	return b.String()
}

func wantLines(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

// kubeTree is a node's log layout in a temp dir: containers/ symlinks into pods/.
type kubeTree struct {
	dir string
}

func newKubeTree(t testing.TB) *kubeTree {
	tr := &kubeTree{dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(tr.dir, "containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	return tr
}

func (tr *kubeTree) glob() string { return filepath.Join(tr.dir, "containers", "*.log") }

// add creates pods/<ns>_<pod>_<uid>/<ctr>/0.log with content and its containers/ symlink, and
// returns the real path.
func (tr *kubeTree) add(t testing.TB, ns, pod, ctr, content string) string {
	t.Helper()
	real := filepath.Join(tr.dir, "pods", ns+"_"+pod+"_uid-"+pod, ctr, "0.log")
	writeFile(t, real, content)
	link := filepath.Join(tr.dir, "containers", fmt.Sprintf("%s_%s_%s-%064x.log", pod, ns, ctr, len(pod)))
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	return real
}

func messagesOf(rs []gotRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Message)
	}
	return out
}

func checkUniqueIDs(t *testing.T, rs []gotRecord) {
	t.Helper()
	seen := make(map[collector.ID]string)
	for _, r := range rs {
		if prev, ok := seen[r.ID]; ok {
			t.Fatalf("duplicate id %s: %q and %q", r.ID, prev, r.Message)
		}
		seen[r.ID] = r.Message
	}
}

func equalMessages(t *testing.T, got []gotRecord, want []string) {
	t.Helper()
	g := messagesOf(got)
	if !slices.Equal(g, want) {
		t.Fatalf("messages:\n got %q\nwant %q", g, want)
	}
	checkUniqueIDs(t, got)
}

func TestTailSymlinksAndMetadata(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart-7d9f", "app", criLines("a", 0, 3))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 3)
	appendFile(t, real, criLines("a", 3, 5))
	got := em.waitRecords(t, 5)
	equalMessages(t, got, wantLines("a", 0, 5))
	k := got[0].Kube
	if k.Namespace != "shop" || k.Pod != "cart-7d9f" || k.PodUID != "uid-cart-7d9f" || k.Container != "app" || k.Node != "node-1" {
		t.Errorf("kube = %+v", k)
	}
	if got[0].Source.Input != "pods" || got[0].Source.Key != got[4].Source.Key {
		t.Errorf("source = %+v / %+v", got[0].Source, got[4].Source)
	}
	if got[0].Stream != collector.StreamStdout {
		t.Errorf("stream = %v", got[0].Stream)
	}
	waitFor(t, "lag 0 and one open file", func() bool {
		return gauge(t, in.metrics.TailLagBytes) == 0 && gauge(t, in.metrics.TailOpenFiles) == 1
	})
}

func TestTailRenameRotation(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 3))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 3)
	rotated := real + ".20261125-101010"
	if err := os.Rename(real, rotated); err != nil {
		t.Fatal(err)
	}
	appendFile(t, rotated, criLines("a", 3, 5)) // written after the rename, before the runtime reopens
	writeFile(t, real, criLines("b", 0, 3))
	got := em.waitRecords(t, 8)
	equalMessages(t, got, append(wantLines("a", 0, 5), wantLines("b", 0, 3)...))
	waitFor(t, "rotated file's state deleted", func() bool { return em.stateLen() == 1 })
	waitFor(t, "rotated file's source released", func() bool {
		em.mu.Lock()
		defer em.mu.Unlock()
		return em.released[got[0].Source] == 1
	})
}

func TestTailCopyTruncate(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 50))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 50)
	if err := os.Truncate(real, 0); err != nil {
		t.Fatal(err)
	}
	// Wait for the truncation to be seen before writing, or the new content could outgrow the
	// old offset first (which no size-based check can tell from appending).
	waitFor(t, "new generation", func() bool {
		return len(em.snapshot()) == 50 && generation(t, em) == 1
	})
	appendFile(t, real, criLines("b", 0, 3))
	got := em.waitRecords(t, 53)
	equalMessages(t, got, append(wantLines("a", 0, 50), wantLines("b", 0, 3)...))
	if got[0].Source.Key == got[50].Source.Key {
		t.Error("copytruncate kept the file key: ids of the new generation could collide")
	}
}

func generation(t *testing.T, em *fakeEmitter) uint32 {
	em.mu.Lock()
	defer em.mu.Unlock()
	for _, v := range em.state {
		sv, err := decodeSaved(v)
		if err != nil {
			t.Fatal(err)
		}
		return sv.gen
	}
	return 0
}

func TestTailDeleteDrains(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 3))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 3)
	appendFile(t, real, criLines("a", 3, 6))
	if err := os.RemoveAll(filepath.Join(tr.dir, "pods")); err != nil {
		t.Fatal(err)
	}
	got := em.waitRecords(t, 6)
	equalMessages(t, got, wantLines("a", 0, 6))
	waitFor(t, "state deleted", func() bool { return em.stateLen() == 0 })
}

func TestTailPartialAcrossRotation(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 1)+ts+" stdout P joined \n"+ts+" stderr P err-")
	appendFile(t, real, "\n")
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 1)
	if err := os.Rename(real, real+".20261125-101010"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, ts+" stdout F across rotation\n"+ts+" stderr F end\n"+criLines("b", 0, 1))
	got := em.waitRecords(t, 4)
	equalMessages(t, got, []string{"a 0", "joined across rotation", "err-end", "b 0"})
	if got[1].Source != got[0].Source {
		t.Error("a joined record should belong to the file it started in")
	}
	waitFor(t, "old state deleted", func() bool { return em.stateLen() == 1 })
}

func TestTailRestartResumes(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 10))
	other := tr.add(t, "shop", "web", "nginx", criLines("w", 0, 2))
	em := newFakeEmitter(nil)
	cfg := collector.InputConfig{Paths: []string{tr.glob()}}
	stop := start(t, testInput(t, cfg), em)
	em.waitRecords(t, 12)
	// A partial whose end is not written yet when we stop.
	appendFile(t, real, ts+" stdout P half ")
	appendFile(t, real, "\n")
	waitFor(t, "partial read", func() bool {
		em.mu.Lock()
		defer em.mu.Unlock()
		for _, v := range em.state {
			if sv, _ := decodeSaved(v); sv.path == real && sv.skip > sv.offset {
				return true
			}
		}
		return false
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// While down: more lines, the end of the partial, and the other file rotated with a tail
	// nobody read yet.
	appendFile(t, real, ts+" stdout F and half\n"+criLines("a", 10, 12))
	appendFile(t, other, criLines("w", 2, 4))
	if err := os.Rename(other, other+".20261125-101010"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, other, criLines("w", 4, 6))

	em2 := newFakeEmitter(em.State())
	start(t, testInput(t, cfg), em2)
	got := em2.waitRecords(t, 7)
	byPod := map[string][]gotRecord{}
	for _, r := range got {
		byPod[r.Kube.Pod] = append(byPod[r.Kube.Pod], r)
	}
	equalMessages(t, byPod["cart"], append([]string{"half and half"}, wantLines("a", 10, 12)...))
	equalMessages(t, byPod["web"], wantLines("w", 2, 6))
	all := append(em.snapshot(), got...)
	checkUniqueIDs(t, all)
	waitFor(t, "rotated state deleted", func() bool { return em2.stateLen() == 2 })
}

// TestTailReplayKeepsIDs: a crash loses what was emitted after the last state the buffer kept;
// reading again from that state yields the same ids.
func TestTailReplayKeepsIDs(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 5))
	cfg := collector.InputConfig{Paths: []string{tr.glob()}}
	em := newFakeEmitter(nil)
	stop := start(t, testInput(t, cfg), em)
	em.waitRecords(t, 5)
	saved := em.State()
	appendFile(t, real, criLines("a", 5, 8))
	first := em.waitRecords(t, 8)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	em2 := newFakeEmitter(saved) // the frames after the first 5 records were lost
	start(t, testInput(t, cfg), em2)
	again := em2.waitRecords(t, 3)
	equalMessages(t, again, wantLines("a", 5, 8))
	for i, r := range again {
		if r.ID != first[5+i].ID {
			t.Errorf("replayed %q: id %s, first time %s", r.Message, r.ID, first[5+i].ID)
		}
	}
}

func TestTailReadFromTail(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("old", 0, 5))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, ReadFrom: "tail"})
	em := newFakeEmitter(nil)
	start(t, in, em)
	waitFor(t, "position saved", func() bool { return em.stateLen() == 1 })
	appendFile(t, real, criLines("new", 0, 2))
	// A file discovered later is read from its head.
	tr.add(t, "shop", "web", "nginx", criLines("later", 0, 2))
	got := em.waitRecords(t, 4)
	var msgs []string
	for _, r := range got {
		msgs = append(msgs, r.Message)
	}
	slices.Sort(msgs)
	want := append(wantLines("later", 0, 2), wantLines("new", 0, 2)...)
	if !slices.Equal(msgs, want) {
		t.Fatalf("got %q, want %q", msgs, want)
	}
}

func TestTailExclude(t *testing.T) {
	tr := newKubeTree(t)
	tr.add(t, "kube-system", "dns", "coredns", criLines("sys", 0, 2))
	tr.add(t, "shop", "cart", "app", criLines("app", 0, 2))
	tr.add(t, "shop", "cart", "istio-proxy", criLines("proxy", 0, 2))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()},
		Exclude: []string{"*_kube-system_*", filepath.Join(tr.dir, "containers", "*_istio-proxy-*")}})
	em := newFakeEmitter(nil)
	stop := start(t, in, em)
	em.waitRecords(t, 2)
	tr.add(t, "shop", "web", "app", criLines("web", 0, 1))
	em.waitRecords(t, 3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := messagesOf(em.snapshot())
	slices.Sort(got)
	if want := []string{"app 0", "app 1", "web 0"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTailManyFilesFewDescriptors(t *testing.T) {
	tr := newKubeTree(t)
	const n = 1100
	var reals []string
	for i := range n {
		reals = append(reals, tr.add(t, "ns", fmt.Sprintf("pod%d", i), "c", criLines(fmt.Sprint(i), 0, 3)))
	}
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, MaxOpenFiles: 8,
		PollInterval: collector.Duration(50 * time.Millisecond)})
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 3*n)
	if open := in.open.Load(); open > 8 {
		t.Errorf("%d files open, max 8", open)
	}
	for _, r := range reals {
		appendFile(t, r, criLines("x", 3, 4))
	}
	got := em.waitRecords(t, 4*n)
	if len(got) != 4*n {
		t.Fatalf("got %d records, want %d", len(got), 4*n)
	}
	checkUniqueIDs(t, got)
	perPod := map[string][]string{}
	for _, r := range got {
		perPod[r.Kube.Pod] = append(perPod[r.Kube.Pod], r.Message)
	}
	for i := range n {
		want := append(wantLines(fmt.Sprint(i), 0, 3), "x 3")
		if p := perPod[fmt.Sprintf("pod%d", i)]; !slices.Equal(p, want) {
			t.Fatalf("pod%d: %q, want %q", i, p, want)
		}
	}
}

func gauge(t *testing.T, v *prometheus.GaugeVec) float64 {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues("pods").Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestTailCopyTruncateWhileDown: logrotate copied the file and truncated it while the agent
// was down. The lines not read before the stop are only in the copy.
func TestTailCopyTruncateWhileDown(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 10))
	em := newFakeEmitter(nil)
	cfg := collector.InputConfig{Paths: []string{tr.glob()}}
	stop := start(t, testInput(t, cfg), em)
	em.waitRecords(t, 10)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, real, criLines("a", 10, 12))
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, real+".1", string(data))
	if err := os.Truncate(real, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, real, criLines("b", 0, 2))

	em2 := newFakeEmitter(em.State())
	start(t, testInput(t, cfg), em2)
	got := em2.waitRecords(t, 4)
	var msgs []string
	for _, r := range got {
		msgs = append(msgs, string(r.Message))
	}
	t.Logf("after restart: %q", msgs)
	equalMessages(t, got, append(wantLines("a", 10, 12), wantLines("b", 0, 2)...))
	before := em.snapshot()
	checkUniqueIDs(t, append(before, got...))
	if got[0].Source.Key != before[0].Source.Key {
		t.Error("the copy's records should keep the saved file's key, so a replay gives the same ids")
	}
	if got[2].Source.Key == before[0].Source.Key {
		t.Error("the truncated file's new content should have a key of its own")
	}
}

// TestTailRotatedBetweenStatAndOpen rotates the file right after the reader stat'ed its path and
// before it opened what it found there, at each place that happens: a file seen for the first
// time, a saved file resumed at restart, and a new file after a rotation. The renamed file's
// lines must still be read, before the new file's.
func TestTailRotatedBetweenStatAndOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
		rotate  bool
		// gap: the runtime creates the new file only after the reader's open, so the
		// /var/log/containers link leads nowhere in between.
		gap bool
	}{
		{name: "first discovery"},
		{name: "resume at restart", restart: true},
		{name: "after a rotation", rotate: true},
		{name: "first discovery, new file late", gap: true},
		{name: "resume at restart, new file late", restart: true, gap: true},
		{name: "after a rotation, new file late", rotate: true, gap: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newKubeTree(t)
			real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 3))
			cfg := collector.InputConfig{Paths: []string{tr.glob()}}
			var (
				mu       sync.Mutex
				armed    bool
				fired    int
				waitFile os.FileInfo // fire only once the path names another file than this
			)
			race := func(path string) {
				mu.Lock()
				defer mu.Unlock()
				if !armed {
					return
				}
				if waitFile != nil {
					if fi, err := os.Stat(real); err != nil || os.SameFile(fi, waitFile) {
						return
					}
				}
				armed = false
				fired++
				// The runtime rotates: the stat'ed file gets a last line and a new name, and a
				// new file takes the path.
				appendFile(t, real, criLines("r", 0, 2))
				if err := os.Rename(real, fmt.Sprintf("%s.%d", real, 10+fired)); err != nil {
					t.Error(err)
				}
				if !tc.gap {
					writeFile(t, real, criLines("n", 0, 2))
				}
			}
			arm := func() {
				mu.Lock()
				armed = true
				mu.Unlock()
			}
			testHookStatted = race
			t.Cleanup(func() { testHookStatted = nil })

			var want []string
			em := newFakeEmitter(nil)
			switch {
			case tc.restart:
				stop := start(t, testInput(t, cfg), em)
				em.waitRecords(t, 3)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				appendFile(t, real, criLines("a", 3, 5)) // written while down
				em = newFakeEmitter(em.State())
				want = wantLines("a", 3, 5)
				arm()
				start(t, testInput(t, cfg), em)
			case tc.rotate:
				start(t, testInput(t, cfg), em)
				em.waitRecords(t, 3)
				fi, err := os.Stat(real)
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				waitFile = fi // fire on the poll that sees the rotation below
				mu.Unlock()
				arm()
				if err := os.Rename(real, real+".1"); err != nil {
					t.Fatal(err)
				}
				writeFile(t, real, criLines("b", 0, 2))
				want = append(wantLines("a", 0, 3), wantLines("b", 0, 2)...)
			default:
				arm()
				start(t, testInput(t, cfg), em)
				want = wantLines("a", 0, 3)
			}
			want = append(want, wantLines("r", 0, 2)...)
			if tc.gap {
				em.waitRecords(t, len(want)) // the renamed file, read while the link led nowhere
				writeFile(t, real, criLines("n", 0, 2))
			}
			want = append(want, wantLines("n", 0, 2)...)
			got := em.waitRecords(t, len(want))
			equalMessages(t, got, want)
			mu.Lock()
			defer mu.Unlock()
			if fired != 1 {
				t.Fatalf("the rotation hook ran %d times, want 1", fired)
			}
		})
	}
}

// TestTailRotationsWhileThePathLedNowhere: a poll finds the path leading nowhere (renamed by a
// rotation, the new file not created yet) and drains the current file; before the next poll a
// new file is created, written and rotated away too, and a third one takes the path. The
// second file's lines are read, in order, before the third's.
func TestTailRotationsWhileThePathLedNowhere(t *testing.T) {
	tr := newKubeTree(t)
	real := tr.add(t, "shop", "cart", "app", criLines("a", 0, 3))
	var (
		mu    sync.Mutex
		armed bool
		step  int
	)
	testHookStatted = func(string) {
		mu.Lock()
		defer mu.Unlock()
		if !armed {
			return
		}
		step++
		switch step {
		case 1: // the runtime renames the file; the next poll's stat finds nothing
			appendFile(t, real, criLines("r", 0, 2))
			if err := os.Rename(real, real+".11"); err != nil {
				t.Error(err)
			}
		case 2: // after that stat: a file created, written and rotated, and the next one
			writeFile(t, real, criLines("b", 0, 2))
			if err := os.Rename(real, real+".12"); err != nil {
				t.Error(err)
			}
			writeFile(t, real, criLines("c", 0, 2))
			armed = false
		}
	}
	t.Cleanup(func() { testHookStatted = nil })
	em := newFakeEmitter(nil)
	start(t, testInput(t, collector.InputConfig{Paths: []string{tr.glob()}}), em)
	em.waitRecords(t, 3)
	mu.Lock()
	armed = true
	mu.Unlock()
	want := slices.Concat(wantLines("a", 0, 3), wantLines("r", 0, 2), wantLines("b", 0, 2), wantLines("c", 0, 2))
	equalMessages(t, em.waitRecords(t, len(want)), want)
}
