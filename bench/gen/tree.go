package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

type config struct {
	Root         string
	Pods         int
	Size         int64
	Format       string // cri | docker
	Seed         int64
	PayloadBytes int
	LongFrac     float64
	Chunk        int
	StderrFrac   float64
	TraceFrac    float64
	Skew         float64
	Workers      int
}

// fileStat is one log file's totals. Records are logical (partials joined); Lines physical.
type fileStat struct {
	Path          string `json:"path"`
	Symlink       string `json:"symlink"`
	Namespace     string `json:"namespace"`
	Pod           string `json:"pod"`
	PodUID        string `json:"pod_uid"`
	Container     string `json:"container"`
	Bytes         int64  `json:"bytes"`
	Lines         int64  `json:"lines"`
	Records       int64  `json:"records"`
	Partials      int64  `json:"partial_lines"`
	LongRecords   int64  `json:"long_records"`
	StderrRecords int64  `json:"stderr_records"`
	Traces        int64  `json:"traces"`      // stack traces: one record each once joined
	TraceLines    int64  `json:"trace_lines"` // their lines: one record each when not joined

	budget int64
	seed   uint64
}

// manifest is DIR/manifest.json. Its total_* keys match the shared benchmark kit's manifest.
type manifest struct {
	Format        string `json:"format"`
	Root          string `json:"root"`
	Seed          int64  `json:"seed"`
	Payload       string `json:"payload"` // "json": every record's message is one JSON object
	TotalFiles    int    `json:"total_files"`
	TotalBytes    int64  `json:"total_bytes"`
	TotalLines    int64  `json:"total_lines"`
	TotalRecords  int64  `json:"total_records"`
	TotalPartials int64  `json:"total_partial_lines"`
	// Stack traces (-trace-frac): total_records counts each of their lines as a record (no
	// multiline joining); total_records_joined counts each trace once (multiline joining on).
	TotalTraces        int64      `json:"total_traces"`
	TotalTraceLines    int64      `json:"total_trace_lines"`
	TotalRecordsJoined int64      `json:"total_records_joined"`
	Files              []fileStat `json:"files"`
}

var (
	namespaces = []string{"default", "shop", "payments", "search", "kube-system", "monitoring", "ingress-nginx", "batch"}
	apps       = []string{"api-gateway", "orders", "payments-worker", "search-indexer", "cart", "auth", "inventory", "notifier", "coredns", "ingress-controller"}
	sidecars   = []string{"istio-proxy", "log-shipper"}
)

// base is the first record's time: fixed, so output does not depend on when gen runs.
var base = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func (c config) validate() error {
	switch {
	case c.Format != "cri" && c.Format != "docker":
		return fmt.Errorf("format %q: want cri or docker", c.Format)
	case c.Pods < 1:
		return fmt.Errorf("pods %d: want at least 1", c.Pods)
	case c.PayloadBytes < 50:
		return fmt.Errorf("payload-bytes %d: want at least 50", c.PayloadBytes)
	case c.Chunk < 64:
		return fmt.Errorf("chunk %d: want at least 64", c.Chunk)
	case c.LongFrac < 0 || c.LongFrac > 1 || c.StderrFrac < 0 || c.StderrFrac > 1 || c.TraceFrac < 0 || c.TraceFrac > 1:
		return fmt.Errorf("long-frac, stderr-frac and trace-frac are shares between 0 and 1")
	}
	return nil
}

// generate lays out the tree and writes every file (Workers at a time), then the manifest.
// Each file draws from its own generator seeded by (seed, file index): the bytes do not
// depend on scheduling.
func generate(c config) (*manifest, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", c.Root, err)
	}
	for _, d := range []string{"pods", "containers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	files := layout(c, root)
	if err := writeAll(c, files); err != nil {
		return nil, err
	}
	m := &manifest{Format: c.Format, Root: root, Seed: c.Seed, Payload: "json", Files: files, TotalFiles: len(files)}
	if c.TraceFrac > 0 {
		m.Payload = "mixed" // trace lines are plain text
	}
	for _, f := range files {
		m.TotalBytes += f.Bytes
		m.TotalLines += f.Lines
		m.TotalRecords += f.Records
		m.TotalPartials += f.Partials
		m.TotalTraces += f.Traces
		m.TotalTraceLines += f.TraceLines
	}
	m.TotalRecordsJoined = m.TotalRecords - m.TotalTraceLines + m.TotalTraces
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "manifest.json"), append(out, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

// layout names pods and containers and shares the byte budget among files with a skew.
func layout(c config, root string) []fileStat {
	r := rand.New(rand.NewPCG(uint64(c.Seed), 0x9e3779b97f4a7c15))
	var files []fileStat
	for p := range c.Pods {
		ns := namespaces[p%len(namespaces)]
		app := pick(r, apps)
		pod := app + "-" + string(appendHex(nil, r, 10)) + "-" + string(appendHex(nil, r, 5))
		uid := string(appendHex(nil, r, 32))
		uid = uid[:8] + "-" + uid[8:12] + "-" + uid[12:16] + "-" + uid[16:20] + "-" + uid[20:]
		ctrs := []string{"app"}
		switch x := r.Float64(); {
		case x < 0.1:
			ctrs = append(ctrs, sidecars...)
		case x < 0.4:
			ctrs = append(ctrs, sidecars[0])
		}
		for _, ctr := range ctrs {
			path := filepath.Join(root, "pods", ns+"_"+pod+"_"+uid, ctr, "0.log")
			link := filepath.Join(root, "containers", pod+"_"+ns+"_"+ctr+"-"+string(appendHex(nil, r, 64))+".log")
			files = append(files, fileStat{Path: path, Symlink: link, Namespace: ns, Pod: pod, PodUID: uid,
				Container: ctr, seed: r.Uint64()})
		}
	}
	weights := make([]float64, len(files))
	var sum float64
	for i := range weights {
		weights[i] = 1 / math.Pow(float64(i+1), c.Skew)
		sum += weights[i]
	}
	r.Shuffle(len(weights), func(i, j int) { weights[i], weights[j] = weights[j], weights[i] })
	for i := range files {
		files[i].budget = int64(float64(c.Size) * weights[i] / sum)
	}
	return files
}

func writeAll(c config, files []fileStat) error {
	workers := max(1, c.Workers)
	next := make(chan int)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := writeFile(c, &files[i]); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}
