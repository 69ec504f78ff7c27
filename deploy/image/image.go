package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Stamp is what the build says about itself: the same values go into the binary's -ldflags
// (tailgate version) and the image's OCI labels.
type Stamp struct {
	Version  string    // image tag and main.version, e.g. v0.1.0
	Commit   string    // full revision
	Modified bool      // the tree had changes not in Commit
	Created  time.Time // build date; the commit time by default, so a rebuild is byte-identical
	Source   string    // repository URL for org.opencontainers.image.source
}

// Ldflags are the linker flags that stamp the binary.
func (s Stamp) Ldflags() string {
	return fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.modified=%t -X main.date=%s",
		s.Version, s.Commit, s.Modified, s.Created.UTC().Format(time.RFC3339))
}

// layer is one gzipped tar layer with both digests computed up front.
type layer struct {
	compressed, uncompressed []byte
	digest, diffID           v1.Hash
}

// newLayer gzips tarBytes with a fixed header (no name, no time), so the digest depends on
// the contents only.
func newLayer(tarBytes []byte) (*layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBytes); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l := &layer{compressed: buf.Bytes(), uncompressed: tarBytes}
	if l.digest, _, err = v1.SHA256(bytes.NewReader(l.compressed)); err != nil {
		return nil, err
	}
	if l.diffID, _, err = v1.SHA256(bytes.NewReader(tarBytes)); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}
func (l *layer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// labels are the OCI annotations of the image config: a registry UI or `crane config` tells
// which commit an image was built from.
func (s Stamp) labels() map[string]string {
	m := map[string]string{
		"org.opencontainers.image.title":       "tailgate",
		"org.opencontainers.image.description": "tailgate node log and metrics agent",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Commit,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
	}
	if s.Source != "" {
		m["org.opencontainers.image.source"] = s.Source
	}
	if s.Modified {
		m["dev.tailgate.tree-modified"] = "true"
	}
	return m
}

// newImage is scratch plus one layer: an OCI image for one platform whose entrypoint is the
// tailgate binary, running as the nonroot user unless the pod says otherwise.
func newImage(p v1.Platform, tarBytes []byte, s Stamp) (v1.Image, error) {
	l, err := newLayer(tarBytes)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{
		Created:   v1.Time{Time: s.Created},
		CreatedBy: "tailgate deploy/image: scratch + tailgate " + s.Version,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Variant = p.Architecture, p.OS, p.Variant
	cf.Created = v1.Time{Time: s.Created}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"run"},
		User:       fmt.Sprintf("%d:%d", Nonroot, Nonroot),
		WorkingDir: "/",
		Labels:     s.labels(),
		// The metrics/health port and the forward port of the default config.
		ExposedPorts: map[string]struct{}{"2020/tcp": {}, "24224/tcp": {}},
	}
	return mutate.ConfigFile(img, cf)
}

// newIndex is the multi-platform image: what a registry serves for one tag.
func newIndex(imgs []v1.Image, s Stamp) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
			},
		})
	}
	return mutate.Annotations(idx, map[string]string{
		"org.opencontainers.image.version":  s.Version,
		"org.opencontainers.image.revision": s.Commit,
		"org.opencontainers.image.created":  s.Created.UTC().Format(time.RFC3339),
	}).(v1.ImageIndex), nil
}
