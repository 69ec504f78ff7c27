package forward

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestSocketGroupAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to one we are not in needs root")
	}
	f := func(group string, wantGID int) {
		t.Helper()
		cfg := collector.InputConfig{Socket: socketPath(t), SocketMode: "0660", SocketGroup: group}
		start(t, cfg)
		fi, err := os.Stat(cfg.Socket)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Gid) != wantGID || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket_group %q: gid %d mode %v, want gid %d mode 0660", group, st.Gid, fi.Mode().Perm(), wantGID)
		}
	}
	f("65534", 65534)
	if g, err := user.LookupGroup("nogroup"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		f("nogroup", gid)
	}
}

func TestSocketGroupUnknown(t *testing.T) {
	_, err := New(collector.InputConfig{Name: "apps", Type: "forward", Socket: "/tmp/x.sock", SocketGroup: "no-such-group-xyz"}, nil, nil)
	if err == nil {
		t.Fatal("an unknown socket_group was accepted")
	}
}
