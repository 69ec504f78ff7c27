package forward

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tinylib/msgp/msgp"
)

// readAck reads one {"ack": chunk} map.
func readAck(t *testing.T, r *msgp.Reader) string {
	t.Helper()
	n, err := r.ReadMapHeader()
	if err != nil || n != 1 {
		t.Fatalf("ack map: %d, %v", n, err)
	}
	if k, err := r.ReadString(); err != nil || k != "ack" {
		t.Fatalf("ack key %q, %v", k, err)
	}
	v, err := r.ReadString()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// expectClosed reads until the server closes the connection (a reset counts: the server
// closed with bytes of ours unread).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// TestWireModesWithAcks sends every event mode on one keep-alive connection, pipelined, and
// reads the acks in order.
func TestWireModesWithAcks(t *testing.T) {
	h := start(t, collector.InputConfig{})
	c := h.dial(t)
	rec := record(nil, "log", "x", "level", "info")
	es := [][]byte{entry(t0, rec, false), entry(t0, rec, true)}
	frames := []struct {
		frame []byte
		chunk string
	}{
		{messageFrame("m", t0, rec, option(nil, "c-message")), "c-message"},
		{forwardFrame("f", es, option(nil, "c-forward", "size", 2)), "c-forward"},
		{packedFrame("p", es, option(nil, "c-packed", "size", 99), 0), "c-packed"},
		{packedFrame("z", es, option(nil, "c-gzip", "compressed", "gzip", "fluent_signal", 0), 2), "c-gzip"},
		{messageFrame("noack", t0, rec, nil), ""},
	}
	var all []byte
	for _, f := range frames {
		all = append(all, f.frame...)
	}
	write(t, c, all)
	r := msgp.NewReader(c)
	for _, f := range frames {
		if f.chunk != "" {
			if got := readAck(t, r); got != f.chunk {
				t.Errorf("ack %q, want %q", got, f.chunk)
			}
		}
	}
	envs := h.out.waitRecords(t, 8)
	if len(envs) != 8 {
		t.Errorf("%d records, want 8", len(envs))
	}
}

// TestChunkRetrySameIDs: a client that resends a chunk (on a new connection) gets the same ids.
func TestChunkRetrySameIDs(t *testing.T) {
	h := start(t, collector.InputConfig{})
	frame := forwardFrame("t", [][]byte{entry(t0, record(nil, "a", 1), false), entry(t0, record(nil, "a", 2), false)}, option(nil, "retry-me"))
	for range 2 {
		c := h.dial(t)
		write(t, c, frame)
		readAck(t, msgp.NewReader(c))
		c.Close()
	}
	recs := h.out.snapshot()
	if len(recs) != 4 || recs[0].ID != recs[2].ID || recs[1].ID != recs[3].ID || recs[0].ID == recs[1].ID {
		t.Fatalf("ids not stable across retries: %v", recs)
	}
	if recs[0].Source == recs[2].Source {
		t.Error("two connections share a source")
	}
}

func TestHandshake(t *testing.T) {
	const key = "s3cret"
	h := start(t, collector.InputConfig{SharedKey: key})
	serverHost, _ := os.Hostname()
	f := func(name, clientKey string, wantOK bool) {
		t.Helper()
		c := h.dial(t)
		r := msgp.NewReader(c)
		// HELO
		if n, err := r.ReadArrayHeader(); err != nil || n != 2 {
			t.Fatalf("%s: HELO: %d %v", name, n, err)
		}
		if s, _ := r.ReadString(); s != "HELO" {
			t.Fatalf("%s: got %q, want HELO", name, s)
		}
		var nonce []byte
		n, _ := r.ReadMapHeader()
		for range n {
			k, _ := r.ReadString()
			if k == "nonce" {
				nonce, _ = r.ReadBytes(nil)
			} else if err := r.Skip(); err != nil {
				t.Fatal(err)
			}
		}
		if len(nonce) == 0 {
			t.Fatalf("%s: HELO without nonce", name)
		}
		// PING with a salt that is not valid UTF-8, sent as a msgpack str (as Fluent Bit does).
		salt := []byte{0xff, 0xfe, 0x00, 's', 'a', 'l', 't'}
		sum := func(host string, k string) string {
			d := sha512.Sum512([]byte(string(salt) + host + string(nonce) + k))
			return hex.EncodeToString(d[:])
		}
		ping := msgp.AppendArrayHeader(nil, 6)
		ping = msgp.AppendString(ping, "PING")
		ping = msgp.AppendString(ping, "client-host")
		ping = msgp.AppendStringFromBytes(ping, salt)
		ping = msgp.AppendString(ping, sum("client-host", clientKey))
		ping = msgp.AppendString(ping, "")
		ping = msgp.AppendString(ping, "")
		write(t, c, ping)
		// PONG
		if n, err := r.ReadArrayHeader(); err != nil || n != 5 {
			t.Fatalf("%s: PONG: %d %v", name, n, err)
		}
		typ, _ := r.ReadString()
		ok, _ := r.ReadBool()
		reason, _ := r.ReadString()
		host, _ := r.ReadString()
		digest, _ := r.ReadString()
		if typ != "PONG" || ok != wantOK {
			t.Fatalf("%s: %s auth_result=%v reason=%q", name, typ, ok, reason)
		}
		if !ok {
			if reason == "" {
				t.Errorf("%s: refusal without a reason", name)
			}
			expectClosed(t, c)
			return
		}
		if host != serverHost || digest != sum(serverHost, key) {
			t.Errorf("%s: PONG host %q digest %q", name, host, digest)
		}
		write(t, c, messageFrame("t", t0, record(nil, "log", "authed"), option(nil, "k1")))
		if got := readAck(t, r); got != "k1" {
			t.Errorf("%s: ack %q", name, got)
		}
	}
	f("right key", key, true)
	f("wrong key", "nope", false)
	h.waitErrors(t, reasonHandshake, 1)
	if envs := h.out.waitRecords(t, 1); len(envs) != 1 || !strings.Contains(envs[0], `"message":"authed"`) {
		t.Errorf("records %v", envs)
	}
}

// TestBadInput: each bad peer loses its connection and is counted; a good client on another
// connection is served before, during and after.
func TestBadInput(t *testing.T) {
	h := start(t, collector.InputConfig{MaxChunkBytes: 1 << 20, IdleTimeout: collector.Duration(time.Minute)})
	good := h.dial(t)
	goodR := msgp.NewReader(good)
	served := 0
	serveGood := func() {
		t.Helper()
		served++
		chunk := "good-" + string(rune('0'+served))
		write(t, good, messageFrame("good", t0, record(nil, "log", "ok"), option(nil, chunk)))
		if got := readAck(t, goodR); got != chunk {
			t.Fatalf("good client: ack %q, want %q", got, chunk)
		}
	}
	serveGood()
	cases := []struct {
		name   string
		send   []byte
		half   bool // close the write side after sending
		reason string
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, reasonGarbage},
		{"100 MiB length prefix", []byte{0x93, 0xa1, 't', 0xc6, 0x06, 0x40, 0x00, 0x00, 'x'}, false, reasonTooLarge},
		{"never used byte", []byte{0x93, 0xc1}, false, reasonMalformed},
		{"wrong types", messageFrame("t", t0, msgp.AppendString(nil, "not a map"), nil), false, reasonBadFrame},
		{"bad json", []byte(`["tag",1,{"a":}]`), false, reasonBadFrame},
		{"half-sent frame", messageFrame("t", t0, record(nil, "log", "cut here"), nil)[:12], true, reasonTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.errorCount(tc.reason)
			c := h.dial(t)
			write(t, c, tc.send)
			if tc.half {
				c.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, c)
			h.waitErrors(t, tc.reason, before+1)
			serveGood()
		})
	}
}

// TestShutdownAcksEmitted: a frame emitted before the stop is still acknowledged once durable,
// and Run returns nil.
func TestShutdownAcksEmitted(t *testing.T) {
	h := start(t, collector.InputConfig{})
	h.out.hold()
	c := h.dial(t)
	write(t, c, messageFrame("t", t0, record(nil, "log", "x"), option(nil, "last")))
	<-h.out.waiting
	stopped := make(chan struct{})
	go func() {
		h.stop(t)
		close(stopped)
	}()
	h.out.release()
	if got := readAck(t, msgp.NewReader(c)); got != "last" {
		t.Fatalf("ack %q", got)
	}
	<-stopped
	h.out.waitFor(t, "release", func() bool { return h.out.released == 1 })
}

func TestStaleSocket(t *testing.T) {
	path := socketPath(t)
	// A socket file nobody accepts on (a crashed agent's) is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	h := start(t, collector.InputConfig{Socket: path})
	c := h.dial(t)
	write(t, c, messageFrame("t", t0, record(nil, "log", "x"), option(nil, "s")))
	readAck(t, msgp.NewReader(c))

	// A live socket and a regular file are left alone.
	for _, cfg := range []collector.InputConfig{{Name: "b", Socket: path}, {Name: "c", Socket: regularFile(t)}} {
		in, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Run(t.Context(), newFakeEmitter()); err == nil {
			t.Errorf("%s: Run replaced %s", cfg.Name, cfg.Socket)
		}
	}
}

func regularFile(t *testing.T) string {
	path := socketPath(t)
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []collector.InputConfig{
		{Name: "none"},
		{Name: "mode", Listen: ":0", SocketMode: "rw"},
		{Name: "tls", Listen: ":0", TLS: collector.TLSConfig{CertFile: "x"}},
		{Name: "tls files", Listen: ":0", TLS: collector.TLSConfig{CertFile: "/nonexistent", KeyFile: "/nonexistent"}},
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("%s: accepted", cfg.Name)
		}
	}
	in, err := New(collector.InputConfig{Name: "d", Listen: ":0"}, nil, nil)
	if err != nil || in.maxChunk != collector.DefaultMaxChunkBytes || in.maxConns != collector.DefaultMaxConnections ||
		in.idle != collector.DefaultIdleTimeout || in.perPeer != collector.DefaultMaxConnectionsPerPeer ||
		in.handshakeTimeout != collector.DefaultHandshakeTimeout || in.frameTimeout != collector.DefaultFrameTimeout ||
		in.budget.max != collector.DefaultMaxBufferedBytes {
		t.Errorf("defaults: %+v %v", in, err)
	}
	if in.Addr() != nil || in.Name() != "d" {
		t.Error("Addr before Run")
	}
}

// TestBackpressure: while Emit blocks (buffer full) for one connection, that connection is
// not read further, and other connections are served.
func TestBackpressure(t *testing.T) {
	h := start(t, collector.InputConfig{})
	h.out.blockTag, h.out.blockGate, h.out.blocked = "slow", make(chan struct{}), make(chan struct{}, 1)
	slow := h.dial(t)
	write(t, slow, messageFrame("slow", t0, record(nil, "log", "1"), option(nil, "s1")))
	write(t, slow, messageFrame("after", t0, record(nil, "log", "2"), option(nil, "s2")))
	<-h.out.blocked

	fast := h.dial(t)
	write(t, fast, messageFrame("fast", t0, record(nil, "log", "f"), option(nil, "f1")))
	if got := readAck(t, msgp.NewReader(fast)); got != "f1" {
		t.Fatalf("ack %q", got)
	}
	for _, r := range h.out.snapshot() {
		if string(r.Tag) != "fast" {
			t.Fatalf("record %q emitted while its connection was blocked", r.Tag)
		}
	}
	close(h.out.blockGate)
	r := msgp.NewReader(slow)
	for _, want := range []string{"s1", "s2"} {
		if got := readAck(t, r); got != want {
			t.Fatalf("ack %q, want %q", got, want)
		}
	}
}

// TestLargeFrame: a frame of several MiB arrives over many reads and is decoded whole; the
// read buffer grows for it and shrinks back after.
func TestLargeFrame(t *testing.T) {
	h := start(t, collector.InputConfig{})
	var es [][]byte
	for i := range 5000 {
		es = append(es, entry(t0, record(nil, "log", strings.Repeat("y", 1000), "i", i), false))
	}
	c := h.dial(t)
	write(t, c, packedFrame("big", es, option(nil, "big"), 0))
	write(t, c, messageFrame("small", t0, record(nil, "log", "after"), option(nil, "small")))
	r := msgp.NewReader(c)
	for _, want := range []string{"big", "small"} {
		if got := readAck(t, r); got != want {
			t.Fatalf("ack %q, want %q", got, want)
		}
	}
	if envs := h.out.waitRecords(t, 5001); len(envs) != 5001 {
		t.Fatalf("%d records", len(envs))
	}
}
