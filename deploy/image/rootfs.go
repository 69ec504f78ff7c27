package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// BinaryPath is where the image keeps the tailgate binary (the entrypoint).
const BinaryPath = "/usr/local/bin/tailgate"

// Nonroot is the uid and gid of the image's default user (the distroless convention). The
// DaemonSet overrides it (README "What needs root"); the loader and setup Job run as it.
const Nonroot = 65532

// entry is one file or directory of the image's filesystem.
type entry struct {
	path string // absolute, no trailing slash
	mode int64  // permission bits (and sticky)
	uid  int
	gid  int
	data []byte
	dir  bool
}

// rootFS is the whole image filesystem besides the binary's bytes: scratch plus what a static
// Go binary that talks TLS and may be run as a named user needs.
func rootFS(binary, caBundle []byte) []entry {
	dirs := []string{"/etc", "/etc/ssl", "/etc/ssl/certs", "/usr", "/usr/local", "/usr/local/bin", "/home"}
	es := make([]entry, 0, 16)
	for _, d := range dirs {
		es = append(es, entry{path: d, mode: 0o755, dir: true})
	}
	es = append(es,
		entry{path: "/tmp", mode: 0o1777, dir: true},
		entry{path: "/home/nonroot", mode: 0o700, uid: Nonroot, gid: Nonroot, dir: true},
		entry{path: BinaryPath, mode: 0o755, data: binary},
		// crypto/x509 reads this path first on Linux; SSL_CERT_FILE / SSL_CERT_DIR still override.
		entry{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		entry{path: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", Nonroot, Nonroot))},
		entry{path: "/etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", Nonroot))},
		// Go's resolver reads it to order /etc/hosts and DNS.
		entry{path: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
	)
	sort.Slice(es, func(i, j int) bool { return es[i].path < es[j].path })
	return es
}

// caBundle is the PEM bundle of the Mozilla NSS roots that golang.org/x/crypto/x509roots ships,
// pinned by this module's go.sum (no base image or distro package is needed). Roots that NSS
// constrains (distrust after a date) are left out: a PEM file cannot carry the constraint.
func caBundle() ([]byte, int, error) {
	var buf bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if _, err := x509.ParseCertificate(r.Certificate); err != nil {
			return nil, 0, fmt.Errorf("ca bundle: root %d: %w", n, err)
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, 0, err
		}
		n++
	}
	return buf.Bytes(), n, nil
}

// layerTar is the uncompressed layer: entries in path order, every time set to mtime, owners
// numeric, so the same inputs give the same bytes (and the same image digest).
func layerTar(es []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.path, err)
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("layer: %s: %w", e.path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeRootFS writes the entries under dir (for the Dockerfile's scratch stage and for tests
// that chroot into the image). Owners are set only when running as root.
func writeRootFS(dir string, es []entry) error {
	for _, e := range es {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		if e.dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		} else if err := os.WriteFile(p, e.data, 0o600); err != nil {
			return err
		}
		mode := os.FileMode(e.mode & 0o777)
		if e.mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, e.uid, e.gid); err != nil {
				return err
			}
		}
	}
	return nil
}
