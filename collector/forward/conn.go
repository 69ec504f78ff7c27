package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

const (
	// A connection starts with this much read buffer and grows it, doubling, for a bigger
	// frame: two thousand idle connections cost 8 MiB, not 64.
	initialReadBuffer = 4 << 10
	// Buffers grown past this for a big frame are dropped once the frame is done, so a
	// thousand mostly idle connections do not each keep what their largest chunk needed.
	// Growth past it is taken from the input's max_buffered_bytes budget.
	keepBuffer = 256 << 10
	// maxHandshakeBytes bounds what an unauthenticated peer can make us buffer.
	maxHandshakeBytes = 64 << 10
	// ackQueue bounds the frames whose acks are awaited per connection; a client pipelining
	// more waits on TCP.
	ackQueue = 64
)

var (
	errStopping = errors.New("input stopping")
	errEvicted  = errors.New("evicted")
)

// emitError is the pipeline refusing a batch: the connection is closed unacknowledged, so the
// client resends.
type emitError struct{ err error }

func (e *emitError) Error() string { return "emit: " + e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// phase is where a connection is in its life; it decides the read deadline and whether the
// connection may be evicted.
type phase uint8

const (
	phaseHandshake phase = iota // TLS and shared-key handshake: handshake_timeout from accept
	phaseIdle                   // between frames: idle_timeout; evictable when no ack is pending
	phaseFrame                  // a frame's first byte arrived: frame_timeout from that byte
	phaseBusy                   // decoding and emitting a whole frame (Emit may block: backpressure)
)

// conn serves one forward connection: a reader (this goroutine) that decodes and emits frames,
// and, from the first frame that asks for an ack, an ack writer that waits for each chunk to
// be durable and acknowledges in order.
type conn struct {
	in   *Input
	nc   net.Conn
	out  collector.Emitter
	ctx  context.Context // for Emit: the input's context
	peer netip.Addr

	dec     decoder
	buf     []byte
	bufRes  reservation // of buf's growth past keepBuffer
	start   int
	end     int
	ms      msgpackScanner
	js      jsonScanner
	jsonBuf []byte

	durables   []collector.Durable // of the frame being decoded
	acks       chan pendingAck     // nil until the first chunk
	writerDone chan struct{}

	mu          sync.Mutex
	phase       phase
	deadline    time.Time // of the handshake or of the frame being read
	pendingAcks int
	frames      int64 // frames completed
	lastRead    time.Time
	stopping    bool
	evicted     bool
	reason      string // set by whoever closes the connection first for a reason of its own
}

type pendingAck struct {
	durables []collector.Durable
	chunk    string
	json     bool
}

func newConn(in *Input, nc net.Conn, out collector.Emitter, ctx context.Context, key uint64) *conn {
	now := time.Now()
	c := &conn{
		in:       in,
		nc:       nc,
		out:      out,
		ctx:      ctx,
		peer:     peerOf(nc),
		bufRes:   reservation{b: in.budget},
		ms:       msgpackScanner{max: in.maxChunk},
		js:       newJSONScanner(in.maxChunk),
		phase:    phaseIdle,
		lastRead: now,
	}
	if in.sharedKey != "" || in.tls != nil {
		c.phase, c.deadline = phaseHandshake, now.Add(in.handshakeTimeout)
	}
	c.dec = decoder{
		src:         collector.NewSource(key, in.name, nil),
		key:         key,
		maxUnpacked: in.maxUnpacked,
		maxEntry:    in.maxChunk,
		winRes:      reservation{b: in.budget},
	}
	c.dec.flush = c.emit
	return c
}

// serve runs the connection until EOF, a bad frame, a timeout, eviction or stop, and returns
// why it ended. ackCtx bounds the wait for durability of frames already emitted.
func (c *conn) serve(ackCtx context.Context) string {
	defer c.out.Release(c.dec.src)
	if c.in.podMeta != nil {
		// Before the first frame: a new pod's peer may wait (bounded) for its metadata.
		defer c.in.podMeta.AttachPeer(c.ctx, c.nc, c.dec.src)()
	}
	err := c.handshakes()
	if err == nil {
		err = c.readLoop(ackCtx)
	}
	if c.acks != nil {
		close(c.acks)
		<-c.writerDone
	}
	c.nc.Close()
	c.bufRes.fit(0)
	c.dec.winRes.fit(0)
	return c.fail(err)
}

// handshakes runs the TLS handshake and the shared-key handshake, both within
// handshake_timeout of the accept.
func (c *conn) handshakes() error {
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(c.deadline)
		if err := tc.HandshakeContext(c.ctx); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return &closeError{reason: closeHandshakeTimeout, msg: err.Error()}
			}
			return &closeError{reason: closeHandshakeFailed, msg: "tls: " + err.Error()}
		}
	}
	if c.in.sharedKey != "" {
		if err := c.handshake(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.phase = phaseIdle
	c.mu.Unlock()
	return nil
}

func (c *conn) readLoop(ackCtx context.Context) error {
	for {
		chunk, isJSON, err := c.next()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.frames++
		if chunk != nil {
			c.pendingAcks++
		}
		c.mu.Unlock()
		if chunk != nil {
			if c.acks == nil {
				c.acks = make(chan pendingAck, ackQueue)
				c.writerDone = make(chan struct{})
				go func() {
					defer close(c.writerDone)
					c.writeAcks(ackCtx)
				}()
			}
			c.acks <- pendingAck{durables: c.durables, chunk: string(chunk), json: isJSON}
			c.durables = nil // handed to the writer
		}
	}
}

// next reads, decodes and emits one frame; the Durables of its batches are in c.durables.
func (c *conn) next() (chunk []byte, isJSON bool, err error) {
	frame, isJSON, err := c.readFrame()
	if err != nil {
		return nil, false, err
	}
	c.setPhase(phaseBusy)
	if isJSON {
		c.jsonBuf, _, err = appendJSONAsMsgpack(c.jsonBuf[:0], frame)
		if err != nil {
			return nil, false, &frameError{reason: reasonBadFrame, err: err}
		}
		frame = c.jsonBuf
	}
	c.durables = c.durables[:0]
	chunk, err = c.dec.decode(frame)
	if cap(c.jsonBuf) > keepBuffer {
		c.jsonBuf = nil
	}
	c.dec.trim()
	return chunk, isJSON, err
}

// emit is the decoder's flush: it blocks while the buffer is full, and this connection is not
// read meanwhile.
func (c *conn) emit(b *collector.Batch) error {
	d, err := c.out.Emit(c.ctx, b)
	if err != nil {
		return &emitError{err}
	}
	c.durables = append(c.durables, d)
	return nil
}

// writeAcks acknowledges chunks in order once durable. After a failure it only drains the
// queue: the connection is closed and the client resends what was not acknowledged.
func (c *conn) writeAcks(ctx context.Context) {
	var buf []byte
	failed := false
	for p := range c.acks {
		if !failed {
			for _, d := range p.durables {
				if err := d.Wait(ctx); err != nil {
					failed = true
					break
				}
			}
			if !failed {
				buf = appendAck(buf[:0], p.chunk, p.json)
				// An ack is tiny: a client that does not take it within frame_timeout is not
				// reading its acks (or is gone).
				_ = c.nc.SetWriteDeadline(time.Now().Add(c.in.frameTimeout))
				if _, err := c.nc.Write(buf); err != nil {
					c.closeFor(closeAckWrite)
					failed = true
				}
			} else if ctx.Err() != nil { // not durable: the reader ends, the client resends
				c.closeFor(closeShutdown)
			} else {
				c.closeFor(closeEmitFailed)
			}
		}
		c.mu.Lock()
		c.pendingAcks--
		c.mu.Unlock()
	}
}

// appendAck writes {"ack": chunk} in msgpack, or in JSON for a client that sent JSON (that is
// what fluent-logger-golang decodes with MarshalAsJSON).
func appendAck(dst []byte, chunk string, json bool) []byte {
	if json {
		dst = append(dst, `{"ack":`...)
		dst = collector.AppendJSONString(dst, []byte(chunk))
		return append(dst, '}')
	}
	dst = msgp.AppendMapHeader(dst, 1)
	dst = msgp.AppendString(dst, "ack")
	return msgp.AppendString(dst, chunk)
}

func (c *conn) handshake() error {
	nonce := newNonce()
	_ = c.nc.SetWriteDeadline(c.deadline)
	if _, err := c.nc.Write(appendHELO(nil, nonce)); err != nil {
		return c.handshakeErr(err)
	}
	c.ms.max, c.js.f.Max = maxHandshakeBytes, maxHandshakeBytes
	frame, isJSON, err := c.readFrame()
	c.ms.max, c.js.f.Max = c.in.maxChunk, c.in.maxChunk
	if err != nil {
		return err
	}
	if isJSON {
		return &frameError{reason: reasonHandshake, err: errors.New("JSON frame before PING")}
	}
	pong, ok := checkPING(frame, nonce, c.in.sharedKey, c.in.hostname)
	if _, err := c.nc.Write(pong); err != nil {
		return c.handshakeErr(err)
	}
	if !ok {
		return &frameError{reason: reasonHandshake, err: errHandshake}
	}
	return nil
}

func (c *conn) handshakeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &closeError{reason: closeHandshakeTimeout, msg: err.Error()}
	}
	return err
}

// fail turns the error that ended the connection into its close reason, counts bad input and
// logs (rate-limited) what an operator should see; a clean close, an idle timeout and a stop
// are not errors.
func (c *conn) fail(err error) string {
	c.mu.Lock()
	reason, evicted, stopping, ph := c.reason, c.evicted, c.stopping, c.phase
	c.mu.Unlock()
	var fe *frameError
	var ce *closeError
	var ee *emitError
	switch {
	case evicted:
		reason = closeEvicted
	case reason != "": // set by the ack writer
	case stopping, errors.Is(err, errStopping), c.ctx.Err() != nil:
		reason = closeShutdown
	case err == nil, errors.Is(err, io.EOF):
		reason = closeClientClosed
	case errors.As(err, &fe):
		reason = closeBadFrame
		if fe.reason == reasonHandshake || ph == phaseHandshake {
			// Whatever was wrong with it, the peer never authenticated (a PING too large,
			// malformed): its input error keeps the frame's own reason.
			reason = closeHandshakeFailed
		}
		c.in.countError(fe.reason)
	case errors.As(err, &ce):
		reason = ce.reason
	case errors.As(err, &ee):
		reason = closeEmitFailed
	default:
		reason = closeReadError
	}
	remote := c.nc.RemoteAddr().String()
	switch reason {
	case closeClientClosed, closeShutdown, closeIdleTimeout, closeReadError:
		c.in.log.Debug("forward connection closed", "remote", remote, "reason", reason, "err", err)
	case closeEvicted:
		c.in.warn.Warn(reason, "forward connection evicted to admit another: a limit was reached with idle connections",
			"remote", remote, "max_connections", c.in.maxConns, "max_connections_per_peer", c.in.perPeer)
	case closeBadFrame:
		c.in.warn.Warn(fe.reason, "forward connection closed", "remote", remote, "reason", fe.reason, "err", err)
	default:
		c.in.warn.Warn(reason, "forward connection closed", "remote", remote, "reason", reason, "err", err)
	}
	return reason
}

// closeFor closes the connection for reason unless another reason came first.
func (c *conn) closeFor(reason string) {
	c.mu.Lock()
	if c.reason == "" && !c.evicted {
		c.reason = reason
	}
	c.mu.Unlock()
	c.nc.Close()
}

// stop makes a blocked read return; the reader then ends, and the writer finishes the acks of
// frames already emitted.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopping = true
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// evictKey reports whether c may be evicted now, and how it ranks. Caller holds in.mu.
func (c *conn) evictKey() (evictKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := !c.stopping && !c.evicted && c.pendingAcks == 0 && (c.phase == phaseIdle || c.phase == phaseHandshake)
	return evictKey{proven: c.frames > 0, lastRead: c.lastRead}, ok
}

// markEvicted claims c for eviction if it is still idle.
func (c *conn) markEvicted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping || c.evicted || c.pendingAcks != 0 || (c.phase != phaseIdle && c.phase != phaseHandshake) {
		return false
	}
	c.evicted = true
	return true
}

func (c *conn) setPhase(p phase) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
}

// beginFrame starts reading a frame: idle until its first byte, unless bytes of it are
// already buffered (pipelined after the previous one). The handshake keeps its own deadline.
func (c *conn) beginFrame() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseHandshake {
		return
	}
	if c.start < c.end {
		c.phase, c.deadline = phaseFrame, time.Now().Add(c.in.frameTimeout)
		return
	}
	c.phase = phaseIdle
}

// read reads from the connection under the deadline of its phase; the first byte of a frame
// starts the frame's deadline. Bytes read by an evicted connection are dropped: they belong
// to a frame nobody will acknowledge.
func (c *conn) read(p []byte) (int, error) {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return 0, errStopping
	}
	if c.evicted {
		c.mu.Unlock()
		return 0, errEvicted
	}
	ph := c.phase
	dl := c.deadline
	if ph == phaseIdle {
		dl = time.Time{} // idle_timeout 0: wait for the next frame as long as the peer lives
		if c.in.idle > 0 {
			dl = time.Now().Add(c.in.idle)
		}
	}
	_ = c.nc.SetReadDeadline(dl)
	c.mu.Unlock()

	n, err := c.nc.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.evicted:
		return 0, errEvicted
	case c.stopping && err != nil:
		return n, errStopping
	}
	if n > 0 {
		now := time.Now()
		c.lastRead = now
		if c.phase == phaseIdle {
			c.phase, c.deadline = phaseFrame, now.Add(c.in.frameTimeout)
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		switch ph {
		case phaseHandshake:
			return n, &closeError{reason: closeHandshakeTimeout, msg: "no PING within handshake_timeout"}
		case phaseFrame:
			return n, &closeError{reason: closeFrameTimeout, msg: "frame not complete within frame_timeout of its first byte"}
		default:
			return n, &closeError{reason: closeIdleTimeout, msg: "no frame within idle_timeout"}
		}
	}
	return n, err
}

// readFrame returns the next whole frame, a slice of the read buffer valid until the next
// call. isJSON reports a JSON frame (MarshalAsJSON) rather than msgpack.
func (c *conn) readFrame() (frame []byte, isJSON bool, err error) {
	const (
		unknown = iota
		msgpackFrame
		jsonFrame
	)
	kind := unknown
	begun := false
	for {
		if kind == unknown {
			for c.start < c.end && isSpace(c.buf[c.start]) { // between JSON frames
				c.start++
			}
			if !begun || c.start == c.end { // whitespace does not start a frame
				c.beginFrame()
				begun = true
			}
		}
		if c.start < c.end {
			var n int
			var done bool
			var err error
			if kind == unknown {
				switch b := c.buf[c.start]; {
				case b == '[':
					kind = jsonFrame
					c.js.reset()
				case b >= 0x90 && b <= 0x9f, b == 0xdc, b == 0xdd:
					kind = msgpackFrame
					c.ms.reset()
				default:
					return nil, false, &frameError{reason: reasonGarbage, err: errors.New("frame does not start with an array")}
				}
			}
			if kind == jsonFrame {
				n, done, err = c.js.scan(c.buf[c.start:c.end])
			} else {
				n, done, err = c.ms.scan(c.buf[c.start:c.end])
			}
			if err != nil {
				reason := reasonMalformed
				if errors.Is(err, errTooLarge) {
					reason = reasonTooLarge
				}
				return nil, false, &frameError{reason: reason, err: err}
			}
			if done {
				frame = c.buf[c.start : c.start+n]
				c.start += n
				return frame, kind == jsonFrame, nil
			}
		}
		if err := c.makeRoom(); err != nil {
			return nil, false, err
		}
		n, err := c.read(c.buf[c.end:])
		c.end += n
		if err != nil {
			if errors.Is(err, io.EOF) && c.end > c.start {
				return nil, false, &frameError{reason: reasonTruncated, err: io.ErrUnexpectedEOF}
			}
			return nil, false, err
		}
	}
}

// makeRoom ensures free space after c.end: it moves a partial frame to the front, grows the
// buffer up to the frame limit (past keepBuffer, from the input's budget), or drops an
// oversized idle buffer.
func (c *conn) makeRoom() error {
	if c.start == c.end {
		c.start, c.end = 0, 0
		if c.buf == nil { // first read: a refused connection never allocates one
			c.buf = make([]byte, initialReadBuffer)
		}
		if len(c.buf) > keepBuffer {
			c.buf = make([]byte, initialReadBuffer)
			c.bufRes.fit(len(c.buf))
		}
		return nil
	}
	if c.end < len(c.buf) {
		return nil
	}
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
		return nil
	}
	if len(c.buf) >= c.in.maxChunk {
		return &frameError{reason: reasonTooLarge, err: errTooLarge}
	}
	size := min(2*len(c.buf), c.in.maxChunk)
	if !c.bufRes.fit(size) {
		return errMemoryLimit
	}
	grown := make([]byte, size)
	c.end = copy(grown, c.buf[:c.end])
	c.buf = grown
	return nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\r' || b == '\t' }
