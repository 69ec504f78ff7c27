package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveBuild(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/tailgate-dev/tailgate", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.1"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	f := func(name, ver, rev, mod, date string, bi *debug.BuildInfo, want string) {
		t.Helper()
		if got := resolveBuild(ver, rev, mod, date, bi).String(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	f("ldflags win over the VCS stamp", "v0.4.0", "fedcba9876543210fedcba9876543210fedcba98", "false", "2026-12-06T20:00:00Z", vcs,
		"tailgate v0.4.0 commit=fedcba9876543210fedcba9876543210fedcba98 modified=false built=2026-12-06T20:00:00Z go=go1.26.8 platform="+platform)
	f("plain go build in a modified checkout", "dev", "", "", "", vcs,
		"tailgate dev commit=0123456789abcdef0123456789abcdef01234567 modified=true committed=2026-12-01T10:00:00Z go=go1.26.8 platform="+platform)
	f("go build with a date but no commit stamp", "dev", "", "", "2026-12-06T20:00:00Z", vcs,
		"tailgate dev commit=0123456789abcdef0123456789abcdef01234567 modified=true built=2026-12-06T20:00:00Z go=go1.26.8 platform="+platform)
	stamped := *vcs
	stamped.Main.Version = "v0.0.0-20261201100000-0123456789ab+dirty" // Go 1.24+: a pseudo-version from the VCS stamp
	f("plain go build, pseudo-version", "dev", "", "", "", &stamped,
		"tailgate v0.0.0-20261201100000-0123456789ab+dirty commit=0123456789abcdef0123456789abcdef01234567 modified=true committed=2026-12-01T10:00:00Z go=go1.26.8 platform="+platform)
	f("go install module@version: no VCS", "dev", "", "", "", installed,
		"tailgate v0.3.1 commit=unknown modified=unknown built=unknown go=go1.26.8 platform="+platform)
	f("no build info at all", "dev", "", "", "", nil,
		"tailgate dev commit=unknown modified=unknown built=unknown go="+runtime.Version()+" platform="+platform)
}

// TestVersionOfBuiltBinary builds the real binary three ways in a throw-away git repository
// holding a copy of this source tree: a plain `go build` names the commit and a clean tree, a
// file added afterwards makes it "modified=true", and the release -ldflags override both.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary three times")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: git is not installed, so the VCS stamp of a plain go build cannot be tested (apt-get install git)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	copyTree(t, root, src, gitFiles(t, git, root))
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gitEnv := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2026-12-01T10:00:00Z", "GIT_COMMITTER_DATE=2026-12-01T10:00:00Z"}
	// GOFLAGS from a developer's shell may say -buildvcs=false; the flag on the command line wins.
	// -mod=mod (as CI runs) may rewrite an untidy go.mod: let it do so before the snapshot, or
	// every build of the copy would be "modified".
	goEnv := []string{"CGO_ENABLED=0", "GOFLAGS=-mod=mod"}
	run(src, goEnv, "go", "list", "./cmd/tailgate")
	run(src, gitEnv, git, "init", "-q")
	run(src, gitEnv, git, "add", "-A")
	run(src, gitEnv, git, "commit", "-q", "-m", "snapshot")
	head := run(src, nil, git, "rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "tailgate")
	build := func(args ...string) string {
		t.Helper()
		run(src, goEnv, "go", append(append([]string{"build", "-trimpath", "-buildvcs=true", "-o", bin}, args...), "./cmd/tailgate")...)
		return run(src, nil, bin, "version")
	}

	// Go stamps a pseudo-version from the commit (v0.0.0-<time>-<12 hex>) when -ldflags don't.
	out := build()
	if want := "-" + head[:12] + " commit=" + head + " modified=false committed=2026-12-01T10:00:00Z "; !strings.Contains(out, want) {
		t.Errorf("plain go build of a clean checkout:\n got %s\nwant it to contain %s", out, want)
	}
	os.WriteFile(filepath.Join(src, "local-change.txt"), []byte("x"), 0o644)
	out = build()
	if want := head[:12] + "+dirty commit=" + head + " modified=true "; !strings.Contains(out, want) {
		t.Errorf("plain go build of a modified checkout:\n got %s\nwant it to contain %s", out, want)
	}
	out = build("-ldflags", "-X main.version=v9.8.7 -X main.commit=abc123 -X main.modified=false -X main.date=2026-12-06T20:00:00Z")
	if want := "tailgate v9.8.7 commit=abc123 modified=false built=2026-12-06T20:00:00Z go="; !strings.HasPrefix(out, want) {
		t.Errorf("release build:\n got %s\nwant prefix %s", out, want)
	}
}

// gitFiles lists the tracked and the new, not ignored files of the checkout at root.
func gitFiles(t *testing.T, git, root string) []string {
	t.Helper()
	cmd := exec.Command(git, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: %s is not a git checkout (git ls-files: %v); the VCS stamp test needs one", root, err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

func copyTree(t *testing.T, from, to string, files []string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(from, f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(to, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
