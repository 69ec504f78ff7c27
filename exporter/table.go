package exporter

import (
	"io"
	"sync"
	"time"
)

// seriesHead is what the table keeps for every series: its label text, rendered and escaped
// once at birth (it is also the index key: escaping makes it unambiguous), and its lifetime.
// Series types embed it and add their values as atomics.
type seriesHead struct {
	labels string // `n1="v1",n2="v2"`, no braces

	// Guarded by table.mu.
	refs     int32
	pos      int   // index in table.all while live
	doomed   bool  // refs reached 0: to be written once more, then removed
	queued   bool  // on table.doomed
	gone     bool  // removed from the table
	doomedAt int64 // unix nanos of the last release to zero
}

func (h *seriesHead) head() *seriesHead { return h }

// headed is any series type that embeds seriesHead.
type headed interface{ head() *seriesHead }

// table is a set of series with one label schema and the families exposed from them. It is
// the machinery shared by every high-cardinality family set (pod logs, pod resources).
type table[S any, P interface {
	*S
	headed
}] struct {
	labelNames []string
	families   []family[P]

	mu     sync.Mutex
	index  map[string]P
	all    []P
	doomed []P // released series waiting for their last scrape, in release order
	// linger bounds how long a doomed series waits for a scrape: an agent nobody scrapes
	// must not keep every pod it ever saw.
	linger time.Duration
	now    func() time.Time

	scratch sync.Pool // *scrapeScratch[P]; one per concurrent scrape
}

type scrapeScratch[P any] struct {
	buf  []byte
	snap []P
}

// flushAt is the buffered exposition size at which a scrape hands bytes to the writer.
const flushAt = 64 << 10

// defaultLinger is how long a released series waits for its last scrape before it is removed
// unscraped: several scrape intervals of any sane configuration.
const defaultLinger = 10 * time.Minute

func newTable[S any, P interface {
	*S
	headed
}](labelNames []string, families ...family[P]) *table[S, P] {
	return &table[S, P]{labelNames: labelNames, families: families, index: make(map[string]P),
		linger: defaultLinger, now: time.Now}
}

// acquire returns the series for values (one per label name), creating it or taking one more
// reference on it. A released series that has not yet had its last scrape is revived.
func (t *table[S, P]) acquire(values ...string) P {
	var kb [256]byte
	key := appendLabels(kb[:0], t.labelNames, values)

	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.index[string(key)]; ok {
		h := s.head()
		h.refs++
		h.doomed = false // if it is still on the doomed list, sweep skips it
		return s
	}
	s := P(new(S))
	h := s.head()
	h.labels = string(key)
	h.refs = 1
	h.pos = len(t.all)
	t.index[h.labels] = s
	t.all = append(t.all, s)
	return s
}

// release drops one reference. At zero the series is doomed: the next scrape writes it and
// removes it, or it is removed unscraped after t.linger. Releasing more often than acquiring
// is ignored.
func (t *table[S, P]) release(s P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := s.head()
	if h.refs <= 0 || h.gone {
		return
	}
	h.refs--
	if h.refs != 0 {
		return
	}
	now := t.now().UnixNano()
	h.doomed, h.doomedAt = true, now
	if !h.queued {
		h.queued = true
		t.doomed = append(t.doomed, s)
	}
	t.expireLocked(now)
}

// expireLocked removes, from the front of the doomed list, the series that waited longer
// than t.linger for a scrape. It stops at the first one still within its time, which bounds
// how long any series waits to linger plus the time the ones before it were re-released.
func (t *table[S, P]) expireLocked(now int64) {
	k := 0
	for ; k < len(t.doomed); k++ {
		s := t.doomed[k]
		h := s.head()
		if h.doomed && now-h.doomedAt < int64(t.linger) {
			break
		}
		t.doomed[k] = nil
		h.queued = false
		if h.doomed {
			t.removeLocked(s)
		}
	}
	if k > 0 {
		t.doomed = t.doomed[k:]
	}
}

// snapshot copies the live series into dst (for one scrape) and removes the doomed ones,
// which are in that copy: this scrape is their last.
func (t *table[S, P]) snapshot(dst []P) []P {
	t.mu.Lock()
	defer t.mu.Unlock()
	dst = append(dst[:0], t.all...)
	t.sweepLocked()
	return dst
}

// sweepLocked removes the doomed series still unreferenced; O(doomed), not O(series).
func (t *table[S, P]) sweepLocked() {
	for i, s := range t.doomed {
		t.doomed[i] = nil
		h := s.head()
		h.queued = false
		if h.doomed { // else revived since its release
			t.removeLocked(s)
		}
	}
	t.doomed = t.doomed[:0]
}

func (t *table[S, P]) removeLocked(s P) {
	h := s.head()
	h.doomed, h.gone = false, true
	last := len(t.all) - 1
	moved := t.all[last]
	t.all[h.pos] = moved
	moved.head().pos = h.pos
	t.all[last] = nil
	t.all = t.all[:last]
	delete(t.index, h.labels)
}

// len reports the number of series in the table (doomed ones included).
func (t *table[S, P]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.all)
}

// WriteTo streams every family, HELP/TYPE once each, a family with no samples omitted. The
// table lock is held only while the series pointers are copied, never while writing to w.
func (t *table[S, P]) WriteTo(w io.Writer) (int64, error) {
	sc, _ := t.scratch.Get().(*scrapeScratch[P])
	if sc == nil {
		sc = &scrapeScratch[P]{buf: make([]byte, 0, flushAt+4<<10)}
	}
	defer func() {
		clear(sc.snap) // do not keep removed series alive until the next scrape
		sc.snap = sc.snap[:0]
		sc.buf = sc.buf[:0]
		t.scratch.Put(sc)
	}()
	sc.snap = t.snapshot(sc.snap)

	var total int64
	flush := func() error {
		n, err := w.Write(sc.buf)
		total += int64(n)
		sc.buf = sc.buf[:0]
		return err
	}
	for i := range t.families {
		f := &t.families[i]
		mark := len(sc.buf)
		sc.buf = append(sc.buf, f.header...)
		wrote := false
		for _, s := range sc.snap {
			before := len(sc.buf)
			sc.buf = f.samples(sc.buf, f.name, s)
			if len(sc.buf) == before {
				continue
			}
			wrote = true
			if len(sc.buf) >= flushAt {
				if err := flush(); err != nil {
					return total, err
				}
			}
		}
		if !wrote {
			sc.buf = sc.buf[:mark] // nothing was flushed since mark: no sample was appended
		}
	}
	if len(sc.buf) > 0 {
		if err := flush(); err != nil {
			return total, err
		}
	}
	return total, nil
}
