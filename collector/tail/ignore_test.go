package tail

import (
	"os"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// TestTailIgnoreOlder: a file not written for longer than ignore_older is skipped at discovery
// and at every rescan; a fresh one beside it is read.
func TestTailIgnoreOlder(t *testing.T) {
	tr := newKubeTree(t)
	old := tr.add(t, "shop", "old-1", "app", criLines("old", 0, 3))
	longAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	tr.add(t, "shop", "new-1", "app", criLines("new", 0, 3))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, IgnoreOlder: collector.Duration(time.Hour)})
	em := newFakeEmitter(nil)
	start(t, in, em)
	got := em.waitRecords(t, 3)
	equalMessages(t, got, wantLines("new", 0, 3))
	// A later rescan (every 4 poll intervals) still leaves the old file alone. This sleep checks
	// for an absence; nothing is waited for.
	time.Sleep(6 * in.poll)
	if n := len(em.snapshot()); n != 3 {
		t.Fatalf("%d records after a rescan, want 3 (the old file must stay ignored)", n)
	}
}
