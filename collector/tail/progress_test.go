package tail

import (
	"os"
	"sync"
	"testing"

	"github.com/tailgate-dev/tailgate/collector"
)

// progressRecorder keeps the last report of every file and the files closed.
type progressRecorder struct {
	mu     sync.Mutex
	last   map[fileID]fileReport
	closed map[fileID]int
}

type fileReport struct {
	namespace, pod, container string
	size, read                int64
}

func (p *progressRecorder) FileProgress(dev, ino uint64, namespace, pod, container string, size, read int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[fileID{dev, ino}] = fileReport{namespace, pod, container, size, read}
}

func (p *progressRecorder) FileClosed(dev, ino uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed[fileID{dev, ino}]++
}

func (p *progressRecorder) report(id fileID) (fileReport, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[id], p.closed[id]
}

func idOf(t *testing.T, path string) fileID {
	t.Helper()
	st, err := statPath(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.id
}

// The progress hook sees each file's size and read offset per poll, with the container's
// identity, and a rotated file closed once it is drained.
func TestTailProgress(t *testing.T) {
	tr := newKubeTree(t)
	first := criLines("a", 0, 3)
	real := tr.add(t, "shop", "cart", "app", first)
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	rec := &progressRecorder{last: map[fileID]fileReport{}, closed: map[fileID]int{}}
	in.SetProgress(rec)
	em := newFakeEmitter(nil)
	start(t, in, em)
	em.waitRecords(t, 3)
	old := idOf(t, real)
	size := int64(len(first))
	waitFor(t, "the file reported read to its end", func() bool {
		r, _ := rec.report(old)
		return r.size == size && r.read == size
	})
	if r, _ := rec.report(old); r.namespace != "shop" || r.pod != "cart" || r.container != "app" {
		t.Fatalf("report names %+v", r)
	}

	more := criLines("a", 3, 5)
	appendFile(t, real, more)
	rotated := real + ".20261125-101010"
	if err := os.Rename(real, rotated); err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, criLines("b", 0, 2))
	em.waitRecords(t, 7)
	cur := idOf(t, real)
	waitFor(t, "the rotated file closed and the new one read", func() bool {
		_, closed := rec.report(old)
		r, _ := rec.report(cur)
		return closed == 1 && r.size == r.read && r.size > 0
	})
	if r, _ := rec.report(old); r.size != size+int64(len(more)) || r.read != r.size {
		t.Errorf("rotated file's last report %+v, want size = read = %d", r, size+int64(len(more)))
	}
}
