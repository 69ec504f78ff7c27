// Command image builds the tailgate container image without a Docker daemon: a static
// CGO_ENABLED=0 binary stamped with the commit (tailgate version), on an empty base (scratch)
// with a CA bundle, /etc/passwd and /etc/group, as an OCI image index for each platform.
//
//	go -C deploy/image run . -oci out/oci -tarball out/tailgate.tar [-push REPO:TAG]
//
// Outputs: -oci DIR (an OCI image layout; `crane push DIR REPO:TAG`, skopeo, or -push),
// -tarball FILE (`docker load` / `podman load`, first platform only), -rootfs DIR (the files of
// the first platform: the Dockerfile copies them into scratch), -push REF (any registry; the
// credentials of ~/.docker/config.json, as crane and ko use them). The tag is never `latest`:
// it is the version, by default `git describe --tags --always --dirty`.
//
// The same commit gives the same image digest: every time in the image is the commit time
// (or -date), layers are written in a fixed order with numeric owners, and the Go build is
// -trimpath. Nothing is fetched but Go modules: no base image, no distro package.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultRepository is the image name in the manifests (deploy/kubernetes, deploy/helm).
const DefaultRepository = "ghcr.io/tailgate-dev/tailgate"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "image:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	src, repo, platforms    string
	version, commit, date   string
	modified                string
	oci, tarball, rootfs    string
	push, binary, goCommand string
}

func newFlags(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.src, "src", "../..", "the tailgate checkout (the module root)")
	fs.StringVar(&o.repo, "repo", DefaultRepository, "image repository (for -tarball's tag and -push without a tag)")
	fs.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated OS/ARCH list; the first is -tarball's and -rootfs'")
	fs.StringVar(&o.version, "version", "", "version and image tag (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.commit, "commit", "", "revision (default: git rev-parse HEAD)")
	fs.StringVar(&o.modified, "modified", "", "true if the tree differs from -commit (default: git status)")
	fs.StringVar(&o.date, "date", "", "build date, RFC 3339 or unix seconds, or \"now\" (default: $SOURCE_DATE_EPOCH, else the commit time)")
	fs.StringVar(&o.oci, "oci", "", "write an OCI image layout (every platform) to this directory")
	fs.StringVar(&o.tarball, "tarball", "", "write a docker-loadable tarball of the first platform to this file")
	fs.StringVar(&o.rootfs, "rootfs", "", "write the first platform's filesystem to this directory")
	fs.StringVar(&o.push, "push", "", "push the index to this reference (REPO or REPO:TAG)")
	fs.StringVar(&o.binary, "binary", "", "use this prebuilt binary instead of building (one platform only)")
	fs.StringVar(&o.goCommand, "go", "go", "the go command")
	return fs
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := newFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.oci == "" && o.tarball == "" && o.rootfs == "" && o.push == "" {
		return errors.New("nothing to do: give -oci, -tarball, -rootfs or -push")
	}
	stamp, err := o.stamp()
	if err != nil {
		return err
	}
	platforms, err := parsePlatforms(o.platforms)
	if err != nil {
		return err
	}
	if o.binary != "" && len(platforms) != 1 {
		return errors.New("-binary needs exactly one -platforms entry")
	}
	certs, nCerts, err := caBundle()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tailgate %s commit=%s modified=%t created=%s, %d CA roots\n",
		stamp.Version, stamp.Commit, stamp.Modified, stamp.Created.UTC().Format(time.RFC3339), nCerts)

	tmp, err := os.MkdirTemp("", "tailgate-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var imgs []v1.Image
	for i, p := range platforms {
		bin := o.binary
		if bin == "" {
			bin = filepath.Join(tmp, "tailgate-"+p.OS+"-"+p.Architecture)
			if err := o.buildBinary(p, stamp, bin, stderr); err != nil {
				return err
			}
		}
		binBytes, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		fsEntries := rootFS(binBytes, certs)
		if i == 0 && o.rootfs != "" {
			if err := writeRootFS(o.rootfs, fsEntries); err != nil {
				return fmt.Errorf("rootfs %s: %w", o.rootfs, err)
			}
		}
		tarBytes, err := layerTar(fsEntries, stamp.Created)
		if err != nil {
			return err
		}
		img, err := newImage(p, tarBytes, stamp)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	idx, err := newIndex(imgs, stamp)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	tag, err := name.NewTag(o.repo + ":" + stamp.Version)
	if err != nil {
		return fmt.Errorf("image tag: %w", err)
	}
	if o.oci != "" {
		// One entry naming the version, as skopeo (oci:DIR:TAG), crane and oras look it up.
		p, err := layout.Write(o.oci, empty.Index)
		if err == nil {
			err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
				"org.opencontainers.image.ref.name": stamp.Version,
			}))
		}
		if err != nil {
			return fmt.Errorf("oci layout %s: %w", o.oci, err)
		}
	}
	if o.tarball != "" {
		if err := tarball.WriteToFile(o.tarball, tag, imgs[0]); err != nil {
			return fmt.Errorf("tarball %s: %w", o.tarball, err)
		}
	}
	if o.push != "" {
		ref, err := name.ParseReference(o.push)
		if err != nil {
			return fmt.Errorf("push %s: %w", o.push, err)
		}
		if _, ok := ref.(name.Tag); ok && !strings.Contains(o.push[strings.LastIndex(o.push, "/")+1:], ":") {
			ref = ref.Context().Tag(stamp.Version) // REPO alone: the version, never "latest"
		}
		if err := remote.WriteIndex(ref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Fprintf(stderr, "pushed %s\n", ref)
	}
	fmt.Fprintf(stdout, "%s@%s\n", tag, digest)
	return nil
}

func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(f))
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want OS/ARCH such as linux/amd64", f)
		}
		out = append(out, *p)
	}
	return out, nil
}

// stamp fills in from git what the flags leave out.
func (o options) stamp() (Stamp, error) {
	s := Stamp{Version: o.version, Commit: o.commit, Source: "https://github.com/tailgate-dev/tailgate"}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = o.src
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if s.Commit == "" {
		c, err := git("rev-parse", "HEAD")
		if err != nil {
			return s, fmt.Errorf("-commit not given and git rev-parse HEAD in %s failed: %v", o.src, err)
		}
		s.Commit = c
	}
	if o.modified != "" {
		m, err := strconv.ParseBool(o.modified)
		if err != nil {
			return s, fmt.Errorf("-modified %q: %w", o.modified, err)
		}
		s.Modified = m
	} else {
		st, err := git("status", "--porcelain")
		if err != nil {
			return s, fmt.Errorf("-modified not given and git status in %s failed: %v", o.src, err)
		}
		s.Modified = st != ""
	}
	if s.Version == "" {
		v, err := git("describe", "--tags", "--always", "--dirty")
		if err != nil {
			return s, fmt.Errorf("-version not given and git describe in %s failed: %v", o.src, err)
		}
		s.Version = v
	}
	date := o.date
	if date == "" {
		date = os.Getenv("SOURCE_DATE_EPOCH")
	}
	switch {
	case date == "now":
		s.Created = time.Now().UTC().Truncate(time.Second)
	case date != "":
		t, err := parseDate(date)
		if err != nil {
			return s, err
		}
		s.Created = t
	default:
		ct, err := git("show", "-s", "--format=%ct", s.Commit)
		if err != nil {
			return s, fmt.Errorf("-date not given and the commit time of %s is unknown: %v", s.Commit, err)
		}
		if s.Created, err = parseDate(ct); err != nil {
			return s, err
		}
	}
	return s, nil
}

func parseDate(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("date %q: want RFC 3339 or unix seconds", s)
	}
	return t.UTC(), nil
}

// buildBinary is `go build` of ./cmd/tailgate for p: static, stripped, -trimpath, stamped.
func (o options) buildBinary(p v1.Platform, s Stamp, out string, stderr io.Writer) error {
	cmd := exec.Command(o.goCommand, "build", "-trimpath", "-buildvcs=false", "-ldflags", s.Ldflags(), "-o", out, "./cmd/tailgate")
	cmd.Dir = o.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w", p.OS, p.Architecture, err)
	}
	return nil
}
