package kube

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// AttachPeer gives src the metadata of the pod behind a forward connection and keeps it
// current; the returned func stops that (call it when the connection ends). A TCP peer is
// found by its IP among this node's pods (host-network pods share the node's IP and are never
// matched). A unix-socket peer is found by its credentials: SO_PEERCRED gives its pid, and
// /proc/<pid>/cgroup names the pod UID and container ID; this needs the agent to see the
// peer's processes (hostPID: true, /proc of the host) and works with the systemd and cgroupfs
// layouts of cgroup v1 and v2. Otherwise src carries the node only.
//
// A new pod's application often connects before the watch has told us its IP (the pod IP is
// set when the sandbox starts, and the event takes its time): then AttachPeer waits for the
// pod as a new log file does, at most the cache's wait_for_pod or until ctx ends, before the
// connection's first record is read. A pod that arrives later still binds the connection, so
// only the records read before that carry the node alone.
func (c *Cache) AttachPeer(ctx context.Context, nc net.Conn, src *collector.Source) (detach func()) {
	b, how := c.bindPeer(nc)
	if b == nil {
		c.m.Peers.WithLabelValues(how).Inc()
		src.SetKube(&collector.Kube{Node: c.node})
		return func() {}
	}
	b.Attach(src)
	if b.found != nil {
		t := time.NewTimer(c.wait)
		select {
		case <-b.found:
		case <-t.C:
			how = "not_found"
		case <-ctx.Done():
			how = "not_found"
		}
		t.Stop()
	}
	c.m.Peers.WithLabelValues(how).Inc()
	return func() { b.Detach(src); b.Close() }
}

func (c *Cache) bindPeer(nc net.Conn) (*Binding, string) {
	switch a := nc.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip := a.IP.String()
		if v4 := a.IP.To4(); v4 != nil {
			ip = v4.String()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if e := c.byIP[ip]; e != nil {
			return c.bindEntry(e, e.onlyContainer()), "ip"
		}
		if a.IP.IsLoopback() {
			return nil, "not_found" // a process of the agent's own pod: no other pod has this IP
		}
		return c.pendingPeer(peerIPKey(ip), "", ""), "ip"
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil, "not_found"
	}
	pid, err := peerPID(uc)
	if err != nil || pid <= 0 {
		return nil, "not_found"
	}
	uid, cid := podOfPID(c.procRoot, pid)
	if uid == "" {
		return nil, "not_found"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byUID[uid]
	if e == nil {
		return c.pendingPeer(uid, uid, cid), "peercred"
	}
	return c.bindEntry(e, e.peerContainer(cid)), "peercred"
}

// peerIPKey is the pending key of a TCP peer waiting for the pod with its IP.
func peerIPKey(ip string) string { return "ip/" + ip }

// pendingPeer returns a binding of a forward peer whose pod is not in the cache yet, waiting
// under key (uid for a unix peer, peerIPKey for a TCP one); found is closed when the pod
// arrives. Caller holds c.mu.
func (c *Cache) pendingPeer(key, uid, cid string) *Binding {
	path := &collector.Kube{Node: c.node}
	b := &Binding{c: c, path: path, uid: uid, key: key, peerCID: cid, peer: true,
		found: make(chan struct{}), sources: map[*collector.Source]struct{}{}}
	b.cur.Store(path)
	if c.pending[key] == nil {
		c.pending[key] = map[*Binding]struct{}{}
	}
	c.pending[key][b] = struct{}{}
	return b
}

// peerContainer names the container of a forward peer: by its container ID (a unix peer),
// else the pod's only container, else "" (the pod alone).
func (e *podEntry) peerContainer(cid string) string {
	if name := e.cids[cid]; name != "" && cid != "" {
		return name
	}
	return e.onlyContainer()
}

// onlyContainer is the pod's container name when it has exactly one, else "".
func (e *podEntry) onlyContainer() string {
	if len(e.specContainers) == 1 {
		return e.specContainers[0]
	}
	return ""
}

// podOfPID reads /proc/<pid>/cgroup and returns the pod UID and container ID it names.
func podOfPID(procRoot string, pid int) (uid, cid string) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if u, c := parseCgroupLine(sc.Bytes()); u != "" {
			return u, c
		}
	}
	return "", ""
}

// parseCgroupLine finds the pod UID and container ID in one line of /proc/<pid>/cgroup:
//
//	0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
//	11:memory:/kubepods/burstable/pod<uid>/<id>
//	0::/../../kubepods-besteffort-pod<uid_>.slice/crio-<id>.scope   (inside a cgroup namespace)
//
// The systemd driver writes the UID with '_' for '-'.
func parseCgroupLine(line []byte) (uid, cid string) {
	if i := bytes.LastIndexByte(line, ':'); i >= 0 {
		line = line[i+1:]
	}
	for p := range bytes.SplitSeq(line, []byte{'/'}) {
		if uid == "" {
			if u, ok := podUIDIn(p); ok {
				uid = u
				continue
			}
		}
		if uid != "" {
			if id, ok := containerIDIn(p); ok {
				cid = id
			}
		}
	}
	return uid, cid
}

// podUIDIn finds "pod<uid>" in a cgroup path element.
func podUIDIn(p []byte) (string, bool) {
	for {
		i := bytes.Index(p, []byte("pod"))
		if i < 0 {
			return "", false
		}
		if u, ok := uidAt(p[i+3:]); ok {
			return u, true
		}
		p = p[i+3:]
	}
}

// uidAt reads a 36-character UID (with '-' or '_') at the start of b.
func uidAt(b []byte) (string, bool) {
	if len(b) < 36 {
		return "", false
	}
	out := make([]byte, 36)
	for i := range 36 {
		c := b[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' && c != '_' {
				return "", false
			}
			c = '-'
		default:
			if !isHex(c) {
				return "", false
			}
		}
		out[i] = c
	}
	if len(b) > 36 && b[36] != '.' {
		return "", false
	}
	return string(out), true
}

// containerIDIn finds a 64-hex-digit container ID in a cgroup path element
// ("cri-containerd-<id>.scope", "crio-<id>.scope", "docker-<id>.scope", "<id>").
func containerIDIn(p []byte) (string, bool) {
	p = bytes.TrimSuffix(p, []byte(".scope"))
	if i := bytes.LastIndexByte(p, '-'); i >= 0 {
		p = p[i+1:]
	}
	if len(p) != 64 {
		return "", false
	}
	for _, c := range p {
		if !isHex(c) {
			return "", false
		}
	}
	return string(p), true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
