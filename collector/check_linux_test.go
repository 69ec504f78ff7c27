package collector

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// asUser runs fn with this process's real user ID lowered to nobody when it runs as root.
// check asks the kernel with access(2), which answers for the real user ID: root may read and
// write any directory, so without this the permission cases below would pass as root without
// testing anything. The effective user ID stays root, so files are created as before.
func asUser(t *testing.T, fn func()) {
	t.Helper()
	if os.Getuid() != 0 {
		fn()
		return
	}
	const nobody = 65534
	if err := syscall.Setresuid(nobody, 0, 0); err != nil {
		t.Skipf("running as root, and the real user ID cannot be lowered to test access(2): %v", err)
	}
	defer func() {
		if err := syscall.Setresuid(0, 0, 0); err != nil {
			panic("restore the real user ID: " + err.Error())
		}
	}()
	fn()
}

// TestCheckAccess: check refuses a data_dir it cannot write and a log directory it cannot
// read, at the key's line, with the directory and the reason; the same config without
// CheckPaths (what run loads) is accepted.
func TestCheckAccess(t *testing.T) {
	dir := t.TempDir()
	readOnly := filepath.Join(dir, "ro")
	unreadable := filepath.Join(dir, "logs")
	for d, mode := range map[string]os.FileMode{readOnly: 0o555, unreadable: 0o311} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	tailOK := "inputs: [{name: p, type: tail, paths: [" + dir + "/*.log]}]\nsinks: [{name: s, type: stdout}]\n"
	f := func(name, y, want string) {
		t.Helper()
		var err error
		asUser(t, func() { _, err = ParseConfig("c.yaml", []byte(y), LoadOptions{CheckPaths: true}) })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %q", name, err, want)
		}
		if _, err := ParseConfig("c.yaml", []byte(y), LoadOptions{}); err != nil {
			t.Errorf("%s: without CheckPaths: %v", name, err)
		}
	}
	f("data_dir in a read-only directory",
		"data_dir: "+readOnly+"/data\n"+tailOK,
		"c.yaml:1: data_dir: "+readOnly+" is not writable: permission denied")
	f("data_dir itself read-only",
		"data_dir: "+readOnly+"\n"+tailOK,
		"c.yaml:1: data_dir: "+readOnly+" is not writable: permission denied")
	f("log directory not readable",
		"data_dir: "+dir+"/data\ninputs:\n  - {name: p, type: tail, paths: ["+unreadable+"/*.log]}\nsinks: [{name: s, type: stdout}]\n",
		`c.yaml:3: input "p": directory of "`+unreadable+`/*.log" is not readable: permission denied`)
}

// TestCheckDataDirOnProc: a directory that even root cannot write (procfs refuses new
// entries), so this case holds whoever runs it. procfs has no size: only the data_dir error
// is reported, not a buffer that does not fit a volume of 0 bytes.
func TestCheckDataDirOnProc(t *testing.T) {
	dir := t.TempDir()
	y := "data_dir: /proc/self/tailgate\ninputs: [{name: p, type: tail, paths: [" + dir + "/*.log]}]\nsinks: [{name: s, type: stdout}]\n"
	_, err := ParseConfig("c.yaml", []byte(y), LoadOptions{CheckPaths: true})
	if err == nil || !strings.Contains(err.Error(), "c.yaml:1: data_dir: /proc/self is not writable: ") {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Errorf("%d errors, want only the one about data_dir:\n%v", n, err)
	}
}
