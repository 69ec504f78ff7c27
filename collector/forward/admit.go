package forward

import (
	"net"
	"net/netip"
	"time"
)

// Why a connection ended: the reason label of tailgate_forward_connections_closed_total.
const (
	closeClientClosed     = "client_closed"     // EOF between frames
	closeShutdown         = "shutdown"          // the agent is stopping
	closeIdleTimeout      = "idle_timeout"      // no frame started within idle_timeout
	closeHandshakeTimeout = "handshake_timeout" // TLS or shared-key handshake not done in handshake_timeout
	closeFrameTimeout     = "frame_timeout"     // a frame not complete frame_timeout after its first byte
	closeHandshakeFailed  = "handshake_failed"  // TLS error, bad PING, shared_key mismatch
	closeBadFrame         = "bad_frame"         // garbage, malformed, too large, truncated (tailgate_input_errors_total says which)
	closeMemoryLimit      = "memory_limit"      // its frame needed more than max_buffered_bytes left
	closeEvicted          = "evicted"           // idle, closed to admit a new connection at a limit
	closeMaxConnections   = "max_connections"   // refused: max_connections reached, none idle
	closePerPeerLimit     = "per_peer_limit"    // refused: max_connections_per_peer reached, none idle
	closeAckWrite         = "ack_write_failed"  // the client does not read its acks, or reset
	closeEmitFailed       = "emit_failed"       // the pipeline refused a batch, or could not make it durable
	closeReadError        = "read_error"        // reset by the peer, or another socket error
)

// closeError ends a connection for a reason that is not bad input.
type closeError struct {
	reason string
	msg    string
}

func (e *closeError) Error() string { return e.reason + ": " + e.msg }

// peerOf is the address a per-peer limit counts: the remote IP of a TCP (or TLS) connection.
// Unix-socket peers have none: the socket's mode and group are their access control, and
// max_connections their limit.
func peerOf(nc net.Conn) netip.Addr {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// admit registers a new connection. At max_connections_per_peer (for its peer) or
// max_connections (for all) it closes the idle connection that matters least to make room,
// and refuses the new one only when none is idle; the refusal reason is returned.
func (in *Input) admit(c *conn) (refused string) {
	in.mu.Lock()
	var victim *conn
	switch {
	case c.peer.IsValid() && in.perPeer > 0 && in.peers[c.peer] >= in.perPeer:
		if victim = in.evictLocked(c.peer); victim == nil {
			in.mu.Unlock()
			return closePerPeerLimit
		}
	case len(in.conns) >= in.maxConns:
		if victim = in.evictLocked(netip.Addr{}); victim == nil {
			in.mu.Unlock()
			return closeMaxConnections
		}
	}
	in.conns[c] = struct{}{}
	if c.peer.IsValid() {
		in.peers[c.peer]++
	}
	in.connections.Inc()
	in.mu.Unlock()
	if victim != nil {
		victim.nc.Close() // its reader ends with errEvicted and counts the close
	}
	return ""
}

// evictLocked picks the idle connection to close (of peer only, when valid), marks it
// evicted and unregisters it; nil when no connection is idle. Idle: between frames, nothing
// awaiting an ack, not stopping. Least worth keeping first: one that never completed a frame
// (a client that sends nothing is the cheapest to lose and the likeliest abuser), then one of
// the peer holding the most connections, then the one idle longest. Caller holds in.mu.
func (in *Input) evictLocked(peer netip.Addr) *conn {
	for range 3 { // a candidate may start a frame between the scan and the mark: rescan
		var best *conn
		var bestKey evictKey
		for c := range in.conns {
			if peer.IsValid() && c.peer != peer {
				continue
			}
			k, ok := c.evictKey()
			if !ok {
				continue
			}
			k.peerConns = 1
			if c.peer.IsValid() {
				k.peerConns = in.peers[c.peer]
			}
			if best == nil || k.before(bestKey) {
				best, bestKey = c, k
			}
		}
		if best == nil {
			return nil
		}
		if best.markEvicted() {
			in.removeLocked(best)
			return best
		}
	}
	return nil
}

// evictKey orders eviction candidates.
type evictKey struct {
	proven    bool // completed a frame
	peerConns int
	lastRead  time.Time
}

func (k evictKey) before(o evictKey) bool {
	if k.proven != o.proven {
		return !k.proven
	}
	if k.peerConns != o.peerConns {
		return k.peerConns > o.peerConns
	}
	return k.lastRead.Before(o.lastRead)
}

// removeLocked unregisters c; it reports false when c was no longer registered (evicted).
func (in *Input) removeLocked(c *conn) bool {
	if _, ok := in.conns[c]; !ok {
		return false
	}
	delete(in.conns, c)
	if c.peer.IsValid() {
		if in.peers[c.peer]--; in.peers[c.peer] <= 0 {
			delete(in.peers, c.peer)
		}
	}
	in.connections.Dec()
	return true
}

// release unregisters a connection whose goroutine ended and counts why it closed.
func (in *Input) release(c *conn, reason string) {
	in.mu.Lock()
	in.removeLocked(c)
	in.mu.Unlock()
	in.closed(reason)
}

func (in *Input) closed(reason string) {
	in.closedTotal.WithLabelValues(in.name, reason).Inc()
}
