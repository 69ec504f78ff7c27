package forward

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// byteConn is a net.Conn that reads from a byte slice in small pieces, so frames arrive split.
type byteConn struct {
	net.Conn
	r    *bytes.Reader
	step int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if len(p) > c.step {
		p = p[:c.step]
	}
	return c.r.Read(p)
}
func (c *byteConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// FuzzDecodeStream feeds arbitrary bytes through a connection's whole read path (framing,
// JSON detection, decoding, msgpack to JSON): it must never panic, and every record it emits
// must render as valid JSON.
func FuzzDecodeStream(f *testing.F) {
	for _, b := range goldenFrames() {
		f.Add(b, uint8(7))
	}
	f.Add([]byte{0x93, 0xa1, 't', 0xc6, 0x06, 0x40, 0x00, 0x00}, uint8(3))
	in, err := New(collector.InputConfig{Name: "fuzz", Listen: ":0", MaxChunkBytes: 1 << 20}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		out := newFakeEmitter()
		c := newConn(in, &byteConn{r: bytes.NewReader(data), step: int(step) + 1}, out, context.Background(), 1)
		for range 1000 {
			if _, _, err := c.next(); err != nil {
				break
			}
		}
		for _, env := range out.envs {
			if !jsonValid([]byte(env)) {
				t.Fatalf("invalid envelope %s", env)
			}
		}
	})
}

// TestWriteFuzzSeeds keeps testdata/fuzz in step with the golden frames (run with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeStream")
	os.MkdirAll(dir, 0o755)
	for name, b := range goldenFrames() {
		seed := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\nuint8(5)\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
