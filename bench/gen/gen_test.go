package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func smallConfig(root, format string, seed int64) config {
	return config{Root: root, Pods: 6, Size: 3 << 20, Format: format, Seed: seed, PayloadBytes: 250,
		LongFrac: 0.02, Chunk: 2048, StderrFrac: 0.15, Skew: 0.8, Workers: 2}
}

// TestTreeMatchesManifest re-reads every file with a reader written from the formats'
// definitions and checks the manifest's totals, the layout and that every joined record is
// one JSON object.
func TestTreeMatchesManifest(t *testing.T) {
	for _, format := range []string{"cri", "docker"} {
		t.Run(format, func(t *testing.T) {
			m, err := generate(smallConfig(t.TempDir(), format, 1))
			if err != nil {
				t.Fatal(err)
			}
			var onDisk manifest
			b, err := os.ReadFile(filepath.Join(m.Root, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &onDisk); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
			var total fileStat
			streams := map[string]int64{}
			for _, f := range onDisk.Files {
				target, err := os.Readlink(f.Symlink)
				if err != nil || target != f.Path || !filepath.IsAbs(target) {
					t.Fatalf("symlink %s -> %q (%v), want absolute %s", f.Symlink, target, err, f.Path)
				}
				wantLink := f.Pod + "_" + f.Namespace + "_" + f.Container + "-"
				if base := filepath.Base(f.Symlink); !strings.HasPrefix(base, wantLink) || len(base) != len(wantLink)+64+len(".log") {
					t.Errorf("symlink name %s", base)
				}
				if want := filepath.Join(m.Root, "pods", f.Namespace+"_"+f.Pod+"_"+f.PodUID, f.Container, "0.log"); f.Path != want {
					t.Errorf("path %s, want %s", f.Path, want)
				}
				got := readLog(t, f.Path, format, streams)
				if got.Bytes != f.Bytes || got.Lines != f.Lines || got.Records != f.Records || got.Partials != f.Partials {
					t.Errorf("%s: read %+v, manifest says bytes %d lines %d records %d partials %d",
						f.Path, got, f.Bytes, f.Lines, f.Records, f.Partials)
				}
				total.Bytes += got.Bytes
				total.Lines += got.Lines
				total.Records += got.Records
				total.Partials += got.Partials
			}
			if total.Bytes != onDisk.TotalBytes || total.Lines != onDisk.TotalLines ||
				total.Records != onDisk.TotalRecords || total.Partials != onDisk.TotalPartials ||
				len(onDisk.Files) != onDisk.TotalFiles {
				t.Errorf("totals read %+v, manifest %+v", total, onDisk)
			}
			if onDisk.TotalPartials == 0 || streams["stderr"] == 0 || streams["stdout"] == 0 {
				t.Errorf("want partials and both streams: partials %d streams %v", onDisk.TotalPartials, streams)
			}
			if onDisk.TotalBytes < 3<<20 {
				t.Errorf("wrote %d bytes, want at least the size asked", onDisk.TotalBytes)
			}
		})
	}
}

// readLog parses one file: CRI "<time> <stream> <P|F> <text>" or docker json-file lines,
// joining partial lines into records and checking each record is a JSON object.
func readLog(t *testing.T, path, format string, streams map[string]int64) fileStat {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st fileStat
	var record []byte
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(line) != 0 || len(record) != 0 {
				t.Fatalf("%s: file ends inside a line or record", path)
			}
			return st
		}
		if err != nil {
			t.Fatal(err)
		}
		st.Bytes += int64(len(line))
		st.Lines++
		line = line[:len(line)-1]
		var stream, text string
		var last bool
		if format == "cri" {
			parts := strings.SplitN(string(line), " ", 4)
			if len(parts) != 4 || (parts[2] != "P" && parts[2] != "F") {
				t.Fatalf("%s:%d: not a CRI line: %.80q", path, st.Lines, line)
			}
			stream, last, text = parts[1], parts[2] == "F", parts[3]
		} else {
			var d struct{ Log, Stream, Time string }
			if err := json.Unmarshal(line, &d); err != nil {
				t.Fatalf("%s:%d: not a docker line: %v", path, st.Lines, err)
			}
			stream, last, text = d.Stream, strings.HasSuffix(d.Log, "\n"), strings.TrimSuffix(d.Log, "\n")
		}
		if stream != "stdout" && stream != "stderr" {
			t.Fatalf("%s:%d: stream %q", path, st.Lines, stream)
		}
		record = append(record, text...)
		if !last {
			st.Partials++
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(record, &obj); err != nil {
			t.Fatalf("%s:%d: record is not a JSON object: %v", path, st.Lines, err)
		}
		streams[stream]++
		st.Records++
		record = record[:0]
	}
}

func treeHash(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintln(h, rel)
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			fmt.Fprintln(h, strings.TrimPrefix(target, root))
			return err
		}
		b, err := os.ReadFile(p)
		h.Write(bytes.ReplaceAll(b, []byte(root), nil)) // manifest.json holds absolute paths
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestDeterministicPerSeed(t *testing.T) {
	gen := func(seed int64, workers int) string {
		c := smallConfig(t.TempDir(), "cri", seed)
		c.Workers = workers
		if _, err := generate(c); err != nil {
			t.Fatal(err)
		}
		return treeHash(t, c.Root)
	}
	a, b, other := gen(7, 1), gen(7, 3), gen(8, 2)
	if a != b {
		t.Error("same seed, different trees")
	}
	if a == other {
		t.Error("different seeds, same tree")
	}
}

func TestPayloadSizes(t *testing.T) {
	c := smallConfig(t.TempDir(), "cri", 3)
	c.LongFrac = 0
	m, err := generate(c)
	if err != nil {
		t.Fatal(err)
	}
	// CRI prefix: 30-byte time, space, 6-byte stream, " F ", newline = 41 bytes.
	mean := float64(m.TotalBytes)/float64(m.TotalRecords) - 41
	if mean < 200 || mean > 300 {
		t.Errorf("mean payload %.0f bytes, want about %d", mean, c.PayloadBytes)
	}
}

func TestParseSize(t *testing.T) {
	f := func(in string, want int64, ok bool) {
		t.Helper()
		got, err := parseSize(in)
		if (err == nil) != ok || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", in, got, err, want, ok)
		}
	}
	f("1GiB", 1<<30, true)
	f("1.5MiB", 3<<19, true)
	f("64KiB", 64<<10, true)
	f("1GB", 1e9, true)
	f("512", 512, true)
	f("x", 0, false)
	f("-1MiB", 0, false)
}

func TestRejectsBadConfig(t *testing.T) {
	for _, mut := range []func(*config){
		func(c *config) { c.Format = "json" },
		func(c *config) { c.Pods = 0 },
		func(c *config) { c.Chunk = 1 },
		func(c *config) { c.LongFrac = 2 },
	} {
		c := smallConfig(t.TempDir(), "cri", 1)
		mut(&c)
		if _, err := generate(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
