// Package freeport picks loopback TCP ports for the processes tests start, stop and start
// again, which must be told their address before they bind it.
//
// A port from binding ":0" comes from the kernel's ephemeral range, the same range outgoing
// connections take their local ports from: between the pick and the process' bind (or its
// restart after a SIGKILL), any connection on the machine may take it, and under a parallel
// test load one did ("bind: address already in use"). These ports are picked below that range,
// where only a listener that chose the same port can be.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port considered: under it are well-known and registered services.
const lowest = 10000

// Ports returns n distinct loopback ports that were free at the time of the call, below the
// ephemeral range (or from it, if the machine leaves no room under it).
func Ports(n int) ([]int, error) {
	top := ephemeralLow()
	if top-lowest < 1000 {
		return ephemeral(n)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	span := top - lowest
	start := rand.IntN(span)
	for i := 0; i < span && len(lns) < n; i++ {
		port := lowest + (start+i)%span
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken: try the next one
		}
		lns = append(lns, ln)
	}
	if len(lns) < n {
		return nil, fmt.Errorf("freeport: %d free ports wanted, %d found in [%d, %d)", n, len(lns), lowest, top)
	}
	out := make([]int, n)
	for i, ln := range lns {
		out[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// Addr returns one such port as a loopback address, "127.0.0.1:N".
func Addr() (string, error) {
	ps, err := Ports(1)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(ps[0]), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default 32768 when it
// cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

func ephemeral(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
