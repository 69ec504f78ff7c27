package kube

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tailgate-dev/tailgate/collector"
)

// AttachPeer gives src the metadata of the pod behind a forward connection and keeps it
// current; the returned func stops that (call it when the connection ends). A TCP peer is
// found by its IP among this node's pods (host-network pods share the node's IP and are never
// matched). A unix-socket peer is found by its credentials: SO_PEERCRED gives its pid, and
// /proc/<pid>/cgroup names the pod UID and container ID; this needs the agent to see the
// peer's processes (hostPID: true, /proc of the host) and works with the systemd and cgroupfs
// layouts of cgroup v1 and v2. Otherwise src carries the node only.
func (c *Cache) AttachPeer(nc net.Conn, src *collector.Source) (detach func()) {
	b, how := c.bindPeer(nc)
	c.m.Peers.WithLabelValues(how).Inc()
	if b == nil {
		src.SetKube(&collector.Kube{Node: c.node})
		return func() {}
	}
	b.Attach(src)
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
		return nil, "not_found"
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
		return nil, "not_found"
	}
	container := e.cids[cid]
	if container == "" {
		container = e.onlyContainer()
	}
	return c.bindEntry(e, container), "peercred"
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
