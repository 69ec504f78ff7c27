package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// manifest is the part of bench/gen's manifest.json the harness needs.
type manifest struct {
	Format       string `json:"format"`
	Payload      string `json:"payload"` // "json": every record's message is a JSON object
	TotalFiles   int    `json:"total_files"`
	TotalBytes   int64  `json:"total_bytes"`
	TotalLines   int64  `json:"total_lines"`
	TotalRecords int64  `json:"total_records"`
	// TotalRecordsJoined counts each stack trace once (bench/gen -trace-frac); 0 in older trees.
	TotalRecordsJoined int64 `json:"total_records_joined"`
	Files              []struct {
		Path string `json:"path"`
	} `json:"files"`
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	if m.TotalRecords <= 0 {
		return nil, fmt.Errorf("manifest %s: no records", dir)
	}
	return &m, nil
}

// warm reads every log file once so that the runs read from the page cache.
func warm(m *manifest) error {
	buf := make([]byte, 1<<20)
	for _, f := range m.Files {
		fh, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("warm %s: %w", f.Path, err)
		}
		_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{fh}, buf)
		fh.Close()
		if err != nil {
			return fmt.Errorf("warm %s: %w", f.Path, err)
		}
	}
	return nil
}
