package exporter

import (
	"bytes"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"time"
)

// seriesHead is what the table keeps for every series: its label text, rendered and escaped
// once at birth (it is also the index key: escaping makes it unambiguous), and its lifetime.
// Series types embed it and add their values as atomics.
type seriesHead[P any] struct {
	// labels is `n1="v1",n2="v2"`, no braces. The buffer is kept when the series is recycled.
	labels []byte

	// Guarded by table.mu.
	refs      int32
	pos       int32  // index in table.all while live
	ppos      int32  // index in its pod group's parked list while parked
	prefixLen uint16 // labels[:prefixLen] is `namespace="…",pod="…"`
	live      bool   // in the table
	doomed    bool   // unreferenced and its pod gone: removed once its final values were scraped
	queued    bool   // on table.doomed
	parked    bool   // unreferenced, kept because the watch says its pod exists
	doomedAt  int64  // unix nanos when it was doomed
}

func (h *seriesHead[P]) head() *seriesHead[P] { return h }

func (h *seriesHead[P]) prefix() []byte { return h.labels[:h.prefixLen] }

// series is what a table needs of a series type: its head, and how to zero its values when the
// struct is recycled for another label set.
type series[S any, P any] interface {
	*S
	head() *seriesHead[P]
	reset()
}

// podGroup is a pod the Kubernetes watch says exists (PodSeen until PodDeleted), with its
// series that nothing references any more: they are parked instead of doomed, so a counter
// does not vanish and come back reset while the pod still runs. Pods the watch does not know
// have no group: a table without the watch spends nothing on groups.
type podGroup[P any] struct {
	prefix []byte // `namespace="…",pod="…"`
	hash   uint64
	uid    string
	parked []P
}

// table is a set of series with one label schema and the families exposed from them. It is
// the machinery shared by every high-cardinality family set (pod logs, tail progress, disk,
// cgroups, pod info). The first two labels are always namespace and pod.
//
// Lifecycle: a series lives while it is referenced (acquire/release) or its pod is watched.
// Then it is doomed, and removed by the first scrape that starts at least two scrape intervals
// later (that scrape writes it a last time), so every scraper saw its final values; or after
// linger when nobody scrapes. Series structs, label buffers and pod groups are recycled, so pod
// churn costs no allocation in steady state.
type table[S any, P series[S, P]] struct {
	labelNames []string
	families   []family[P]
	weight     int64 // samples one series exposes, charged to the budget
	budget     *budget
	seed       maphash.Seed

	mu      sync.Mutex
	index   hashIndex[P]
	groups  hashIndex[*podGroup[P]]
	all     []P
	doomed  []P // doomed series waiting for their removal, in doom order
	retired []P // removed while a scrape may still be writing them: recycled when none is
	free    []P
	freeG   []*podGroup[P]
	scrapes int // scrapes in flight (they hold pointers to series)
	scratch []*scrapeScratch[P]

	// linger bounds how long a doomed series waits for scrapes: an agent nobody scrapes must
	// not keep every pod it ever saw.
	linger time.Duration
	now    func() time.Time
	clock  scrapeClock
}

// scrapeScratch is one scrape's buffer and snapshot, reused by the next scrape (kept by the
// table, not a sync.Pool, which a GC empties: steady-state scrapes allocate nothing).
type scrapeScratch[P any] struct {
	buf  []byte
	snap []P
}

// flushAt is the buffered exposition size at which a scrape hands bytes to the writer.
const flushAt = 64 << 10

// defaultLinger is how long a doomed series waits for scrapes before it is removed unscraped:
// several scrape intervals of any sane configuration (three learned intervals if longer).
const defaultLinger = 10 * time.Minute

// maxFree bounds the recycled structs a table keeps, so a burst of pods does not pin memory.
const maxFree = 4096

func newTable[S any, P series[S, P]](labelNames []string, b *budget, families ...family[P]) *table[S, P] {
	if len(labelNames) < 2 || labelNames[0] != "namespace" || labelNames[1] != "pod" {
		panic("exporter: a pod table's first labels are namespace and pod")
	}
	if b == nil {
		b = &budget{}
	}
	t := &table[S, P]{labelNames: labelNames, families: families, weight: int64(len(families)), budget: b,
		seed: maphash.MakeSeed(), linger: defaultLinger, now: time.Now}
	t.index.init(func(s P) []byte { return s.head().labels })
	t.groups.init(func(g *podGroup[P]) []byte { return g.prefix })
	return t
}

// withWeight sets how many samples one series counts for in the budget, for families that
// expose more or fewer than one sample per series.
func (t *table[S, P]) withWeight(w int64) *table[S, P] { t.weight = w; return t }

// acquire returns the series for values (one per label name), creating it or taking one more
// reference on it; nil if a new series would exceed the budget (the refusal is counted). A
// doomed or parked series is revived with its values.
func (t *table[S, P]) acquire(values ...string) P {
	var kb [256]byte
	key, prefixLen := appendPodLabels(kb[:0], t.labelNames, values)
	h := maphash.Bytes(t.seed, key)

	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.index.get(h, key); ok {
		sh := s.head()
		sh.refs++
		sh.doomed = false // if it is still on the doomed list, the sweep skips it
		if sh.parked {
			t.unparkLocked(s)
		}
		return s
	}
	if !t.budget.take(t.weight) {
		return nil
	}
	s, ok := pop(&t.free)
	if !ok {
		s = P(new(S))
	}
	sh := s.head()
	sh.labels = append(sh.labels[:0], key...)
	sh.prefixLen = uint16(min(prefixLen, len(key), 1<<16-1))
	sh.refs = 1
	sh.live = true
	sh.pos = int32(len(t.all))
	t.index.put(h, sh.labels, s)
	t.all = append(t.all, s)
	return s
}

// groupLocked returns the watched pod of the rendered prefix, creating it if asked; nil if the
// watch does not know the pod.
func (t *table[S, P]) groupLocked(prefix []byte, create bool) *podGroup[P] {
	if len(t.groups.byHash) == 0 && !create {
		return nil
	}
	h := maphash.Bytes(t.seed, prefix)
	if g, ok := t.groups.get(h, prefix); ok {
		return g
	}
	if !create {
		return nil
	}
	g, ok := pop(&t.freeG)
	if !ok {
		g = new(podGroup[P])
	}
	g.prefix = append(g.prefix[:0], prefix...)
	g.hash = h
	t.groups.put(h, g.prefix, g)
	return g
}

func (t *table[S, P]) parkLocked(g *podGroup[P], s P) {
	sh := s.head()
	sh.parked, sh.ppos = true, int32(len(g.parked))
	g.parked = append(g.parked, s)
}

func (t *table[S, P]) unparkLocked(s P) {
	sh := s.head()
	sh.parked = false
	g := t.groupLocked(sh.prefix(), false)
	if g == nil || int(sh.ppos) >= len(g.parked) || g.parked[sh.ppos] != s {
		return
	}
	swapRemove(&g.parked, sh.ppos, func(m P, i int32) { m.head().ppos = i })
}

// release drops one reference. At zero the series is parked if the watch says its pod
// exists, else doomed. Releasing more often than acquiring is ignored.
func (t *table[S, P]) release(s P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sh := s.head()
	if sh.refs <= 0 || !sh.live {
		return
	}
	sh.refs--
	if sh.refs != 0 {
		return
	}
	if g := t.groupLocked(sh.prefix(), false); g != nil {
		t.parkLocked(g, s)
		return
	}
	now := t.now().UnixNano()
	t.doomLocked(s, now)
	t.expireLocked(now)
}

// remove drops a series at once, whatever its references, for series whose last value does
// not matter (an info series replaced by its successor).
func (t *table[S, P]) remove(s P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sh := s.head()
	if !sh.live {
		return
	}
	if sh.queued {
		if i := slices.Index(t.doomed, s); i >= 0 {
			t.doomed = slices.Delete(t.doomed, i, i+1)
		}
		sh.queued = false
	}
	t.removeLocked(s)
}

func (t *table[S, P]) doomLocked(s P, now int64) {
	sh := s.head()
	sh.doomed, sh.doomedAt = true, now
	if !sh.queued {
		sh.queued = true
		t.doomed = append(t.doomed, s)
	}
}

// podSeen marks the pod as existing (the watch saw it): its series stay while unreferenced,
// and the ones already doomed are revived. A new uid replaces the one known for the name.
func (t *table[S, P]) podSeen(namespace, pod, uid string) {
	var kb [128]byte
	prefix, _ := appendPodLabels(kb[:0], t.labelNames[:2], []string{namespace, pod})
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.groupLocked(prefix, false); g != nil {
		if g.uid != uid {
			g.uid = uid
		}
		return // known already: nothing of it was doomed since
	}
	g := t.groupLocked(prefix, true)
	g.uid = uid
	for _, s := range t.doomed { // O(doomed), once per pod
		if sh := s.head(); sh.doomed && bytes.Equal(sh.prefix(), prefix) {
			sh.doomed = false
			t.parkLocked(g, s)
		}
	}
}

// podDeleted marks the pod as gone: its unreferenced series are doomed now, the others when
// released. A uid that is not the one last seen for the name (a newer pod took the name) is
// ignored; an empty uid matches any.
func (t *table[S, P]) podDeleted(namespace, pod, uid string) {
	var kb [128]byte
	prefix, _ := appendPodLabels(kb[:0], t.labelNames[:2], []string{namespace, pod})
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groupLocked(prefix, false)
	if g == nil || (uid != "" && g.uid != "" && g.uid != uid) {
		return
	}
	now := t.now().UnixNano()
	for i, s := range g.parked {
		s.head().parked = false
		t.doomLocked(s, now)
		g.parked[i] = nil
	}
	g.parked = g.parked[:0]
	t.groups.del(g.hash, g.prefix, g)
	g.uid = ""
	if len(t.freeG) < maxFree {
		t.freeG = append(t.freeG, g)
	}
	t.expireLocked(now)
}

// lingerLocked is how long a doomed series waits for scrapes at most.
func (t *table[S, P]) lingerLocked() int64 {
	return max(int64(t.linger), 3*t.clock.interval())
}

// expireLocked removes, from the front of the doomed list, the series that waited longer
// than the linger time for a scrape. It stops at the first one still within its time, which
// bounds how long any series waits to linger plus the time the ones before it were re-doomed.
func (t *table[S, P]) expireLocked(now int64) {
	linger := t.lingerLocked()
	k := 0
	for ; k < len(t.doomed); k++ {
		s := t.doomed[k]
		sh := s.head()
		if sh.doomed && now-sh.doomedAt < linger {
			break
		}
		t.doomed[k] = nil
		sh.queued = false
		if sh.doomed {
			t.removeLocked(s)
		}
	}
	if k > 0 {
		t.doomed = append(t.doomed[:0], t.doomed[k:]...)
	}
}

// snapshot copies the live series into a scratch for one scrape, notes the scrape's time, and
// removes the doomed series whose time has come: they are in that copy, so this scrape writes
// them a last time. The caller must call scrapeDone with the scratch after writing.
func (t *table[S, P]) snapshot() *scrapeScratch[P] {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scrapes++
	sc, ok := pop(&t.scratch)
	if !ok {
		sc = &scrapeScratch[P]{buf: make([]byte, 0, flushAt+4<<10)}
	}
	sc.snap = append(sc.snap[:0], t.all...)
	now := t.now().UnixNano()
	t.clock.observe(now)
	t.sweepLocked(now)
	return sc
}

// maxScratch is how many scrapes' scratch a table keeps (concurrent scrapes beyond it allocate).
const maxScratch = 2

func (t *table[S, P]) scrapeDone(sc *scrapeScratch[P]) {
	clear(sc.snap) // do not keep removed series alive until the next scrape
	sc.snap = sc.snap[:0]
	sc.buf = sc.buf[:0]
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.scratch) < maxScratch {
		t.scratch = append(t.scratch, sc)
	}
	t.scrapes--
	if t.scrapes == 0 {
		for i, s := range t.retired {
			t.recycleLocked(s)
			t.retired[i] = nil
		}
		t.retired = t.retired[:0]
	}
}

// sweepLocked removes the doomed series doomed at least two scrape intervals ago (or longer
// than linger); O(doomed), not O(series). Until two scrapes gave an interval, only linger
// removes.
func (t *table[S, P]) sweepLocked(now int64) {
	due := t.lingerLocked()
	if iv := t.clock.interval(); iv > 0 {
		due = min(due, 2*iv)
	}
	keep := 0
	for _, s := range t.doomed {
		sh := s.head()
		switch {
		case !sh.doomed: // revived since
			sh.queued = false
		case now-sh.doomedAt >= due:
			sh.queued = false
			t.removeLocked(s)
		default:
			t.doomed[keep] = s
			keep++
		}
	}
	clear(t.doomed[keep:])
	t.doomed = t.doomed[:keep]
}

func (t *table[S, P]) removeLocked(s P) {
	sh := s.head()
	if sh.parked {
		t.unparkLocked(s)
	}
	swapRemove(&t.all, sh.pos, func(m P, i int32) { m.head().pos = i })
	t.index.del(maphash.Bytes(t.seed, sh.labels), sh.labels, s)

	sh.live, sh.doomed = false, false
	t.budget.give(t.weight)
	if t.scrapes > 0 {
		t.retired = append(t.retired, s)
	} else {
		t.recycleLocked(s)
	}
}

// recycleLocked keeps a removed series for reuse. No scrape holds it any more, and its last
// holder released it, so nobody reads or bumps its values.
func (t *table[S, P]) recycleLocked(s P) {
	if len(t.free) >= maxFree {
		return
	}
	s.reset()
	sh := s.head()
	sh.refs, sh.doomed, sh.queued, sh.parked, sh.doomedAt = 0, false, false, false, 0
	t.free = append(t.free, s)
}

// names returns the table's family names.
func (t *table[S, P]) names() []string {
	out := make([]string, len(t.families))
	for i, f := range t.families {
		out[i] = f.name
	}
	return out
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
	sc := t.snapshot()
	defer t.scrapeDone(sc)

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

// swapRemove removes list[i] by moving the last element into its place; setPos records the
// moved element's new index.
func swapRemove[T any](list *[]T, i int32, setPos func(T, int32)) {
	l := *list
	last := len(l) - 1
	l[i] = l[last]
	setPos(l[i], i)
	var zero T
	l[last] = zero
	*list = l[:last]
}

// pop takes the last element of a free list, if it has one.
func pop[T any](list *[]T) (T, bool) {
	var zero T
	n := len(*list)
	if n == 0 {
		return zero, false
	}
	v := (*list)[n-1]
	(*list)[n-1] = zero
	*list = (*list)[:n-1]
	return v, true
}

// scrapeClock learns the scrape interval from the start times of recent scrapes: the second
// longest gap among the last eight. One outlier (a Prometheus restart, an hour without
// scrapes) does not stretch it; with several scrapers (an HA pair) the longer of their
// alternating gaps is at least half of each one's interval, so two of them cover one interval
// of every scraper.
type scrapeClock struct {
	last int64
	gaps [8]int64
	n    int
}

func (c *scrapeClock) observe(now int64) {
	if c.last != 0 && now > c.last {
		c.gaps[c.n%len(c.gaps)] = now - c.last
		c.n++
	}
	c.last = now
}

// interval is the learned scrape interval; 0 until two scrapes were seen.
func (c *scrapeClock) interval() int64 {
	var first, second int64
	for i := range min(c.n, len(c.gaps)) {
		switch g := c.gaps[i]; {
		case g > first:
			first, second = g, first
		case g > second:
			second = g
		}
	}
	if c.n == 1 {
		return first
	}
	return second
}

// hashIndex maps rendered label text to values by a 64-bit hash, so a lookup or an insert
// with a key in a stack buffer allocates nothing. Keys whose hash is taken by another key go
// to a string-keyed overflow map (in practice never: 2^-64 per pair).
type hashIndex[V comparable] struct {
	byHash  map[uint64]V
	collide map[string]V
	key     func(V) []byte
}

func (x *hashIndex[V]) init(key func(V) []byte) {
	x.byHash = make(map[uint64]V)
	x.key = key
}

func (x *hashIndex[V]) get(h uint64, key []byte) (V, bool) {
	if v, ok := x.byHash[h]; ok && bytes.Equal(x.key(v), key) {
		return v, true
	}
	if len(x.collide) > 0 {
		v, ok := x.collide[string(key)]
		return v, ok
	}
	var zero V
	return zero, false
}

// put inserts v, whose key must not be present; key must stay valid while v is in the index.
func (x *hashIndex[V]) put(h uint64, key []byte, v V) {
	if _, taken := x.byHash[h]; !taken {
		x.byHash[h] = v
		return
	}
	if x.collide == nil {
		x.collide = make(map[string]V)
	}
	x.collide[string(key)] = v
}

func (x *hashIndex[V]) del(h uint64, key []byte, v V) {
	if cur, ok := x.byHash[h]; ok && cur == v {
		delete(x.byHash, h)
		return
	}
	delete(x.collide, string(key))
}
