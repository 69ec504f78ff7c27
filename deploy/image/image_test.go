package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var testStamp = Stamp{
	Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567",
	Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Source: "https://github.com/tailgate-dev/tailgate",
}

func TestCABundle(t *testing.T) {
	pemBytes, n, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("%d roots; the NSS store has well over 100", n)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the bundle does not parse as PEM certificates")
	}
	parsed := 0
	for rest := pemBytes; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsCA {
			t.Errorf("%s is not a CA certificate", c.Subject)
		}
		parsed++
	}
	if parsed != n {
		t.Errorf("parsed %d certificates, caBundle said %d", parsed, n)
	}
}

// layerFiles lists the image's single layer: path -> header, and the contents of regular files.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers: %v, %d (want 1 on scratch)", err, len(ls))
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			data[h.Name], _ = io.ReadAll(tr)
		}
	}
}

func TestImageContentsAndConfig(t *testing.T) {
	certs, _, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	bin := []byte("\x7fELF not really a binary")
	tarBytes, err := layerTar(rootFS(bin, certs), testStamp.Created)
	if err != nil {
		t.Fatal(err)
	}
	img, err := newImage(v1.Platform{OS: "linux", Architecture: "arm64"}, tarBytes, testStamp)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	hdrs, data := layerFiles(t, img)
	want := map[string]int64{
		"usr/local/bin/tailgate": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644, "etc/passwd": 0o644,
		"etc/group": 0o644, "etc/nsswitch.conf": 0o644, "tmp/": 0o1777, "home/nonroot/": 0o700,
	}
	for p, mode := range want {
		h, ok := hdrs[p]
		if !ok {
			t.Errorf("%s missing from the layer", p)
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s mode %o, want %o", p, h.Mode, mode)
		}
		if !h.ModTime.Equal(testStamp.Created) {
			t.Errorf("%s mtime %v, want the stamp's %v", p, h.ModTime, testStamp.Created)
		}
	}
	if h := hdrs["home/nonroot/"]; h != nil && (h.Uid != Nonroot || h.Gid != Nonroot) {
		t.Errorf("home/nonroot owned %d:%d", h.Uid, h.Gid)
	}
	if !bytes.Equal(data["usr/local/bin/tailgate"], bin) {
		t.Error("the binary in the layer differs from the one given")
	}
	if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], certs) {
		t.Error("the CA bundle in the layer differs")
	}
	if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd: %q", data["etc/passwd"])
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "arm64" || !cf.Created.Time.Equal(testStamp.Created) {
		t.Errorf("config: os %s arch %s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if strings.Join(c.Entrypoint, " ") != BinaryPath || strings.Join(c.Cmd, " ") != "run" || c.User != "65532:65532" {
		t.Errorf("entrypoint %v cmd %v user %q", c.Entrypoint, c.Cmd, c.User)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.revision": testStamp.Commit,
		"org.opencontainers.image.version":  "v1.2.3",
		"org.opencontainers.image.created":  "2026-12-01T10:00:00Z",
		"org.opencontainers.image.source":   testStamp.Source,
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if _, ok := c.Labels["dev.tailgate.tree-modified"]; ok {
		t.Error("a clean build carries the tree-modified label")
	}
}

// TestImageIsReproducible: the same inputs give the same digest, and each input moves it.
func TestImageIsReproducible(t *testing.T) {
	certs, _, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	digest := func(bin string, s Stamp) v1.Hash {
		t.Helper()
		var imgs []v1.Image
		for _, arch := range []string{"amd64", "arm64"} {
			tb, err := layerTar(rootFS([]byte(bin+arch), certs), s.Created)
			if err != nil {
				t.Fatal(err)
			}
			img, err := newImage(v1.Platform{OS: "linux", Architecture: arch}, tb, s)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
		idx, err := newIndex(imgs, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(idx); err != nil {
			t.Fatalf("validate.Index: %v", err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := digest("bin", testStamp), digest("bin", testStamp)
	if a != b {
		t.Fatalf("two builds of the same inputs: %s and %s", a, b)
	}
	later := testStamp
	later.Created = later.Created.Add(time.Second)
	modified := testStamp
	modified.Modified = true
	for what, d := range map[string]v1.Hash{
		"binary": digest("other", testStamp), "date": digest("bin", later), "modified": digest("bin", modified),
	} {
		if d == a {
			t.Errorf("a different %s gave the same digest", what)
		}
	}
}

// TestRunWritesEveryOutput drives the command as CI does, with a stand-in binary: the OCI
// layout, the docker tarball and a push to an in-process registry all hold the same image, and
// the digest printed is the registry's.
func TestRunWritesEveryOutput(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/tailgate"
	dir := t.TempDir()
	bin := filepath.Join(dir, "tailgate")
	os.WriteFile(bin, []byte("stand-in binary"), 0o755)
	var stdout, stderr bytes.Buffer
	err := run([]string{"-binary", bin, "-platforms", "linux/amd64", "-version", "v1.2.3",
		"-commit", testStamp.Commit, "-modified", "true", "-date", "2026-12-01T10:00:00Z",
		"-repo", repo, "-oci", filepath.Join(dir, "oci"), "-tarball", filepath.Join(dir, "image.tar"),
		"-rootfs", filepath.Join(dir, "rootfs"), "-push", repo}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	printed := strings.TrimSpace(stdout.String())
	ref, err := name.NewDigest(printed)
	if err != nil {
		t.Fatalf("printed %q, want REPO:TAG@sha256:...: %v", printed, err)
	}

	// The push went to REPO:VERSION (never latest) and the registry has the printed digest.
	tagged, err := name.ParseReference(repo + ":v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Index(tagged)
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	if d, _ := pushed.Digest(); d.String() != ref.DigestStr() {
		t.Errorf("registry has %s, printed %s", d, ref.DigestStr())
	}
	if _, err := remote.Index(tagged.Context().Tag("latest")); err == nil {
		t.Error("a latest tag was pushed")
	}

	lp, err := layout.FromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.2.3" {
		t.Fatalf("layout index.json: %v %+v", err, im)
	}
	if im.Manifests[0].Digest.String() != ref.DigestStr() {
		t.Errorf("layout holds %s, printed %s", im.Manifests[0].Digest, ref.DigestStr())
	}
	idx, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate the layout's index: %v", err)
	}

	img, err := tarball.ImageFromPath(filepath.Join(dir, "image.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate the tarball's image: %v", err)
	}
	cf, _ := img.ConfigFile()
	if cf.Config.Labels["dev.tailgate.tree-modified"] != "true" {
		t.Error("-modified true is not in the labels")
	}
	flat := mutate.Extract(img)
	defer flat.Close()
	tr := tar.NewReader(flat)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == strings.TrimPrefix(BinaryPath, "/") {
			got, _ := io.ReadAll(tr)
			found = string(got) == "stand-in binary"
		}
	}
	if !found {
		t.Error("the tarball's image does not hold the given binary at " + BinaryPath)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "rootfs", BinaryPath)); err != nil || string(got) != "stand-in binary" {
		t.Errorf("rootfs binary: %v %q", err, got)
	}
}

// TestBuildsTheRealBinary builds tailgate from this checkout for the host platform, as CI's
// image step does, and runs the binary from the image's filesystem: `tailgate version` names the
// commit, the tree state and the build date the image was stamped with.
func TestBuildsTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tailgate binary")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIPPED LOUDLY: git is not installed; the image stamp comes from git (apt-get install git)")
	}
	root := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run([]string{"-src", "../..", "-platforms", "linux/" + runtime.GOARCH, "-date", "2026-12-01T10:00:00Z",
		"-rootfs", root}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	head, err := exec.Command("git", "-C", "../..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, BinaryPath), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("tailgate version: %v\n%s", err, out)
	}
	want := " commit=" + strings.TrimSpace(string(head)) + " modified="
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), " built=2026-12-01T10:00:00Z ") {
		t.Errorf("tailgate version from the image: %s\nwant %q and the -date", out, want)
	}
	if f, err := exec.Command("go", "version", "-m", filepath.Join(root, BinaryPath)).Output(); err == nil &&
		!strings.Contains(string(f), "CGO_ENABLED=0") {
		t.Errorf("the image's binary is not static (CGO_ENABLED=0):\n%s", f)
	}
}
