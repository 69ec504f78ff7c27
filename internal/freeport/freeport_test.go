package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreFreeDistinctAndBelowTheEphemeralRange(t *testing.T) {
	ps, err := Ports(20)
	if err != nil {
		t.Fatal(err)
	}
	low := ephemeralLow()
	seen := map[int]bool{}
	for _, p := range ps {
		if seen[p] {
			t.Fatalf("port %d twice", p)
		}
		seen[p] = true
		if low-lowest >= 1000 && (p < lowest || p >= low) {
			t.Errorf("port %d outside [%d, %d)", p, lowest, low)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

func TestAddrSkipsATakenPort(t *testing.T) {
	// A port someone listens on is never handed out.
	held, err := Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(held[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 200 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if a == ln.Addr().String() {
			t.Fatalf("handed out %s, which is listened on", a)
		}
	}
}
