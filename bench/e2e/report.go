package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

func appendResults(path string, rs []result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return fmt.Errorf("results %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results %s: %w", path, err)
	}
	return nil
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// markdown renders every run and the median of the runs that passed their check.
func markdown(label string, rs []result) string {
	var b strings.Builder
	b.WriteString("| peer | run | wall s | MiB/s | lines/s | CPU s/GiB | peak RSS MiB | records out / manifest | ok |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(run string, r result) {
		ok := "yes"
		if !r.OK {
			ok = "**no**: " + strings.ReplaceAll(r.Error, "|", `\|`)
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.1f | %.0f | %.2f | %.0f | %d / %d | %s |\n", label, run,
			r.WallSeconds, r.MiBPerSecond, r.LinesPerSecond, r.CPUSecondsGiB, r.PeakRSSMiB, r.RecordsOut, r.RecordsManifest, ok)
	}
	var good []result
	for _, r := range rs {
		row(fmt.Sprint(r.Run), r)
		if r.OK {
			good = append(good, r)
		}
	}
	if len(good) > 0 {
		m := result{
			WallSeconds:     median(good, func(r result) float64 { return r.WallSeconds }),
			MiBPerSecond:    median(good, func(r result) float64 { return r.MiBPerSecond }),
			LinesPerSecond:  median(good, func(r result) float64 { return r.LinesPerSecond }),
			CPUSecondsGiB:   median(good, func(r result) float64 { return r.CPUSecondsGiB }),
			PeakRSSMiB:      median(good, func(r result) float64 { return r.PeakRSSMiB }),
			RecordsOut:      int64(median(good, func(r result) float64 { return float64(r.RecordsOut) })),
			RecordsManifest: good[0].RecordsManifest,
			OK:              true,
		}
		row(fmt.Sprintf("median of %d", len(good)), m)
	}
	return b.String()
}
