package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailgate-dev/tailgate/internal/ratelog"
)

// Policy says what Append does when MaxBytes is reached.
type Policy int

const (
	Block      Policy = iota // Append waits until readers free space
	DropOldest               // the oldest segment is deleted, lagging cursors move past it
)

// Kind is a frame's type.
type Kind uint8

const (
	KindData       Kind = 1 // a batch; readers see these
	KindCheckpoint Kind = 2 // full input state, written first in every segment; readers skip it
)

// Options configure a Buffer.
type Options struct {
	MaxBytes     int64 // bytes of segment files on disk; 0 = unlimited
	SegmentBytes int64 // roll to a new segment past this size
	// Sync is the longest a frame stays unsynced when nobody waits for it (the group-commit
	// interval); 0 = fsync after every append ("always"). WaitDurable does not wait for it:
	// a waiter starts a commit as soon as the disk is free.
	Sync     time.Duration
	WhenFull Policy
	// Checkpoint returns the payload of the KindCheckpoint frame written first in every new
	// segment. It is called on the appending goroutine, inside Append (or Open). May be nil.
	Checkpoint func() []byte
	Logger     *slog.Logger
	// OnDrop, when set, is called by DropOldest for every reader that loses frames it had not
	// acked, before their segment is deleted, so the owner can tell what was lost (the
	// dead-letter store counts dropped records by reason). It runs inside Append with the
	// buffer locked: it must not call the Buffer.
	OnDrop func(Drop)
}

// Drop is what drop_oldest deleted before a reader acked it.
type Drop struct {
	Reader          string
	Frames, Records int64
	path            string
	name            string
	from, size      int64
}

// Each calls fn with the payload and count of every dropped data frame, oldest first; payload
// is valid only until fn returns. Corrupt frames are skipped. Call it only from OnDrop: the
// segment is deleted afterwards.
func (d Drop) Each(fn func(payload []byte, count int) error) error {
	f, err := os.Open(d.path)
	if err != nil {
		return fmt.Errorf("segment %s: %w", d.name, err)
	}
	defer f.Close()
	var payload []byte
	return eachFrame(f, d.name, d.from, d.size, &payload, func(h header, _ int64, p []byte) error {
		if h.kind != KindData {
			return nil
		}
		return fn(p, int(h.count))
	})
}

// DefaultSegmentBytes is used when Options.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// minSegmentBytes keeps tiny test configurations workable.
const minSegmentBytes = 4 << 10

// Position is a place in the buffer: a segment number and a byte offset in it.
type Position struct {
	Segment uint64
	Offset  int64
}

// Less reports whether p is before q.
func (p Position) Less(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Ticket identifies an appended frame for WaitDurable.
type Ticket struct{ end Position }

// End is the position after the ticket's frame.
func (t Ticket) End() Position { return t.end }

// Frame is one frame read by a Reader.
type Frame struct {
	Pos   Position  // where the frame starts
	End   Position  // the position after it: pass to Reader.Ack
	Count int       // the count given to Append (records in the batch)
	Time  time.Time // when it was appended
	Data  []byte    // the payload; owned by the caller, who may give it back with Recycle
}

// recycledFrames is how many frame buffers Recycle keeps for reuse.
const recycledFrames = 6

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("buffer closed")
	// ErrTooLarge is returned by Append for a payload that can never fit in a segment or in
	// MaxBytes.
	ErrTooLarge = errors.New("frame too large for the buffer")
	// ErrReaderRemoved is returned by Next after RemoveReader.
	ErrReaderRemoved = errors.New("reader removed")
	// ErrLocked is returned by Open when another process holds the data dir.
	ErrLocked = errors.New("data dir locked")
)

// Buffer is an open data dir. Append may be called from many goroutines.
type Buffer struct {
	dir, segDir, curDir string
	opts                Options
	log                 *slog.Logger
	warn                *ratelog.Limiter // repeated warnings: drops, corrupt frames, cursor writes
	lock                *os.File         // flock on <dir>/LOCK
	maxPayload          int64
	freeFrames          chan []byte // frame buffers given back by Recycle

	mu        sync.Mutex
	segments  []*segment // oldest first; the last one is never deleted
	active    *os.File   // write handle of activeSeg; nil until the first Append after Open
	activeSeg *segment
	nextID    uint64
	written   Position // end of the last frame written
	durable   Position // end of the last frame synced
	total     int64    // sum of segment sizes
	pending   []*os.File
	dirDirty  bool
	syncErr   error
	// syncing is set while a commit runs; syncTarget is the position it makes durable.
	syncing       bool
	syncTarget    Position
	intervalSyncs int64 // commits started by the Sync timer (or Close)
	waiterSyncs   int64 // commits started on demand: a WaitDurable caller, or sync: always
	closed        bool
	finished      bool          // Close has made its final sync
	durableCh     chan struct{} // closed and replaced when durable advances, a reader is removed, or on Close
	spaceCh       chan struct{} // closed and replaced when a segment is deleted
	readers       map[string]*Reader
	hdr           [frameHeaderSize]byte // Append's header write buffer

	// Counters from Open, read-only afterwards.
	corruptFrames  int64
	truncatedBytes int64
	corruptCursors int

	blocked   atomic.Int32 // appenders waiting for space
	syncMu    sync.Mutex   // one sync pass at a time
	persistMu sync.Mutex   // one cursor write pass at a time
	// beforeSync, when set (tests only), runs in every commit before its first fsync.
	beforeSync func()
	syncReq    chan struct{}
	kick       chan struct{}
	done       chan struct{}
	wg         sync.WaitGroup
}

// Open opens or creates the buffer in dir. It truncates torn tails, counts corrupt frames,
// and loads the cursors of the readers found on disk. Open does not write a segment: the first
// Append starts a new one, with its checkpoint, so call Recover before appending.
func Open(dir string, opts Options) (*Buffer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WhenFull != Block && opts.WhenFull != DropOldest {
		return nil, fmt.Errorf("buffer %s: unknown when_full policy %d", dir, opts.WhenFull)
	}
	if opts.MaxBytes < 0 || opts.SegmentBytes < 0 || opts.Sync < 0 {
		return nil, fmt.Errorf("buffer %s: negative size or interval in options", dir)
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxBytes > 0 && opts.SegmentBytes > opts.MaxBytes/2 {
		// Two segments at least, so a full buffer can delete one while writing the other.
		opts.SegmentBytes = opts.MaxBytes / 2
	}
	opts.SegmentBytes = max(opts.SegmentBytes, minSegmentBytes)
	b := &Buffer{
		dir:        dir,
		segDir:     filepath.Join(dir, "segments"),
		curDir:     filepath.Join(dir, "cursors"),
		opts:       opts,
		log:        opts.Logger.With("component", "buffer", "path", dir),
		maxPayload: opts.SegmentBytes - segmentHeaderSize - frameHeaderSize,
		nextID:     1,
		durableCh:  make(chan struct{}),
		spaceCh:    make(chan struct{}),
		readers:    map[string]*Reader{},
		syncReq:    make(chan struct{}, 1),
		freeFrames: make(chan []byte, recycledFrames),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	b.warn = ratelog.New(b.log, time.Minute)
	for _, d := range []string{b.segDir, b.curDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("buffer: create %s: %w", d, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	b.lock = lock
	if err := b.loadSegments(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	if err := b.loadCursors(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	b.wg.Add(2)
	go b.syncLoop()
	go b.maintainLoop()
	return b, nil
}

// loadSegments scans every segment, truncates torn tails and fills b.segments.
func (b *Buffer) loadSegments() error {
	files, err := listSegments(b.segDir)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	for _, sf := range files {
		s, err := b.loadSegment(sf)
		if err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		if s != nil {
			b.segments = append(b.segments, s)
			b.total += s.size
		}
		b.nextID = sf.id + 1
	}
	if n := len(b.segments); n > 0 {
		last := b.segments[n-1]
		b.written = Position{Segment: last.id, Offset: last.size}
	}
	b.durable = b.written
	return nil
}

// loadSegment scans one segment file, truncates its torn tail, and syncs it: what a crashed
// process left in the page cache is made durable before readers see it.
func (b *Buffer) loadSegment(sf segmentFile) (*segment, error) {
	path := filepath.Join(b.segDir, sf.name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", sf.name, err)
	}
	defer f.Close()
	sc, err := scanSegment(f, sf.name, sf.id, sf.size)
	if err != nil {
		return nil, err
	}
	for _, c := range sc.corrupt {
		if c.Tail {
			b.truncatedBytes += c.Length
			b.log.Warn("truncating torn tail", "segment", sf.name, "offset", c.Offset, "bytes", c.Length, "reason", c.Reason)
			continue
		}
		b.corruptFrames++
		b.log.Warn("skipping corrupt frame", "segment", sf.name, "offset", c.Offset, "bytes", c.Length, "reason", c.Reason)
	}
	if sf.size < segmentHeaderSize {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove empty segment %s: %w", sf.name, err)
		}
		b.dirDirty = true
		return nil, nil
	}
	if sc.validEnd < sf.size {
		if err := f.Truncate(sc.validEnd); err != nil {
			return nil, fmt.Errorf("segment %s: truncate torn tail at %d: %w", sf.name, sc.validEnd, err)
		}
	}
	if err := fdatasync(f); err != nil {
		return nil, fmt.Errorf("segment %s: sync: %w", sf.name, err)
	}
	return &segment{
		id: sf.id, size: sc.validEnd, dataFrames: sc.dataFrames, records: sc.records,
		first: sc.first, checkpoint: sc.checkpoint,
	}, nil
}

// Close stops the background work, syncs what was appended, persists the cursors, and makes
// blocked calls return ErrClosed. Frames appended before Close are durable when it returns nil.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.wg.Wait()

	err := b.syncOnce()
	if perr := b.persistCursors(); err == nil {
		err = perr
	}
	b.mu.Lock()
	if b.active != nil {
		if cerr := b.active.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("buffer: close segment: %w", cerr)
		}
		b.active = nil
	}
	b.finished = true
	close(b.durableCh)
	b.durableCh = make(chan struct{})
	readers := make([]*Reader, 0, len(b.readers))
	for _, r := range b.readers {
		readers = append(readers, r)
	}
	b.mu.Unlock()
	for _, r := range readers {
		r.closeFile()
	}
	if cerr := b.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("buffer: release lock: %w", cerr)
	}
	return err
}
