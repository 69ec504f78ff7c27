package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

const (
	initialReadBuffer = 32 << 10
	// Buffers grown past this for a big frame are dropped once the frame is done, so a
	// thousand mostly idle connections do not each keep what their largest chunk needed.
	keepBuffer = 256 << 10
	// maxHandshakeBytes bounds what an unauthenticated peer can make us buffer.
	maxHandshakeBytes = 64 << 10
	// ackQueue bounds the frames whose acks are awaited per connection; a client pipelining
	// more waits on TCP.
	ackQueue = 64
)

var errStopping = errors.New("input stopping")

// emitError is the pipeline refusing a batch: the connection is closed unacknowledged, so the
// client resends.
type emitError struct{ err error }

func (e *emitError) Error() string { return "emit: " + e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// conn serves one forward connection: a reader (this goroutine) that decodes and emits frames,
// and an ack writer that waits for each chunk to be durable and acknowledges in order.
type conn struct {
	in  *Input
	nc  net.Conn
	out collector.Emitter
	ctx context.Context // for Emit: the input's context

	dec     decoder
	buf     []byte
	start   int
	end     int
	ms      msgpackScanner
	js      jsonScanner
	jsonBuf []byte

	durables []collector.Durable // of the frame being decoded
	acks     chan pendingAck

	mu       sync.Mutex
	stopping bool
}

type pendingAck struct {
	durables []collector.Durable
	chunk    string
	json     bool
}

func newConn(in *Input, nc net.Conn, out collector.Emitter, ctx context.Context, key uint64) *conn {
	c := &conn{
		in:   in,
		nc:   nc,
		out:  out,
		ctx:  ctx,
		buf:  make([]byte, initialReadBuffer),
		ms:   msgpackScanner{max: in.maxChunk},
		js:   jsonScanner{max: in.maxChunk},
		acks: make(chan pendingAck, ackQueue),
	}
	c.dec = decoder{
		src:         collector.NewSource(key, in.name, nil),
		key:         key,
		maxUnpacked: in.maxUnpacked,
	}
	c.dec.flush = c.emit
	return c
}

// serve runs the connection until EOF, a bad frame, the idle timeout or stop. ackCtx bounds
// the wait for durability of frames already emitted.
func (c *conn) serve(ackCtx context.Context) {
	defer c.out.Release(c.dec.src)
	defer c.nc.Close()
	if c.in.peers != nil {
		defer c.in.peers.AttachPeer(c.nc, c.dec.src)()
	}
	if c.in.sharedKey != "" {
		if err := c.handshake(); err != nil {
			c.fail(err)
			return
		}
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeAcks(ackCtx)
	}()
	err := c.readLoop()
	close(c.acks)
	<-writerDone
	c.fail(err)
}

func (c *conn) readLoop() error {
	for {
		chunk, isJSON, err := c.next()
		if err != nil {
			return err
		}
		if chunk != nil {
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
		if failed {
			continue
		}
		for _, d := range p.durables {
			if err := d.Wait(ctx); err != nil {
				failed = true
				break
			}
		}
		if !failed {
			buf = appendAck(buf[:0], p.chunk, p.json)
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.in.idle))
			if _, err := c.nc.Write(buf); err != nil {
				failed = true
			}
		}
		if failed {
			c.nc.Close()
		}
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
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.in.idle))
	if _, err := c.nc.Write(appendHELO(nil, nonce)); err != nil {
		return err
	}
	c.ms.max, c.js.max = maxHandshakeBytes, maxHandshakeBytes
	frame, isJSON, err := c.readFrame()
	c.ms.max, c.js.max = c.in.maxChunk, c.in.maxChunk
	if err != nil {
		return err
	}
	if isJSON {
		return &frameError{reason: reasonHandshake, err: errors.New("JSON frame before PING")}
	}
	pong, ok := checkPING(frame, nonce, c.in.sharedKey, c.in.hostname)
	if _, err := c.nc.Write(pong); err != nil {
		return err
	}
	if !ok {
		return &frameError{reason: reasonHandshake, err: errHandshake}
	}
	return nil
}

// fail counts and logs why the connection ends; a clean close, an idle timeout and a stop are
// not errors.
func (c *conn) fail(err error) {
	var fe *frameError
	var ee *emitError
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, errStopping), c.ctx.Err() != nil:
	case errors.As(err, &fe):
		c.in.countError(fe.reason)
		c.in.warn.Warn(fe.reason, "forward connection closed",
			"remote", c.nc.RemoteAddr().String(), "reason", fe.reason, "err", err)
	case errors.As(err, &ee):
		c.in.warn.Warn("emit", "forward: emit failed, connection closed", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.in.log.Debug("forward connection idle, closed", "remote", c.nc.RemoteAddr().String())
	default:
		c.in.log.Debug("forward connection ended", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

// stop makes a blocked read return; the reader then ends, and the writer finishes the acks of
// frames already emitted.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopping = true
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

func (c *conn) read(p []byte) (int, error) {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return 0, errStopping
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.in.idle))
	c.mu.Unlock()
	return c.nc.Read(p)
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
	for {
		if kind == unknown {
			for c.start < c.end && isSpace(c.buf[c.start]) { // between JSON frames
				c.start++
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
// buffer up to the frame limit, or drops an oversized idle buffer.
func (c *conn) makeRoom() error {
	if c.start == c.end {
		c.start, c.end = 0, 0
		if len(c.buf) > keepBuffer {
			c.buf = make([]byte, initialReadBuffer)
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
	grown := make([]byte, min(2*len(c.buf), c.in.maxChunk))
	c.end = copy(grown, c.buf[:c.end])
	c.buf = grown
	return nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\r' || b == '\t' }
