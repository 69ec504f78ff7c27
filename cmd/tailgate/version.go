package main

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Build stamps, set by the image build and the Dockerfile:
//
//	-ldflags "-X main.version=v0.1.0 -X main.commit=<sha> -X main.modified=false -X main.date=2026-12-06T20:00:00Z"
//
// A plain `go build` in a checkout leaves them empty and the Go toolchain's VCS stamp
// (vcs.revision, vcs.modified, vcs.time, and a pseudo-version such as
// v0.0.0-20261201100000-0123456789ab+dirty) fills them in; `go install ...@v0.1.0` gives the
// module version and no commit. A git worktree (.git is a file) gets no VCS stamp from Go.
var (
	version  = "dev"
	commit   = ""
	modified = "" // "true" or "false": -X sets strings only
	date     = ""
)

// buildInfo is what `tailgate version` prints and the agent logs at start.
type buildInfo struct {
	Version   string
	Commit    string // full revision, "" when unknown
	Modified  string // "true", "false" or "" when unknown
	Date      string // build date (RFC 3339) from -ldflags, "" when unknown
	Committed string // commit time from the VCS stamp, when there is no build date
	Go        string
	Platform  string
}

// currentBuild reads the stamps of this binary.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuild(version, commit, modified, date, bi)
}

// resolveBuild prefers the -ldflags stamps and falls back, field by field, to the Go build info.
func resolveBuild(ver, rev, mod, built string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: rev, Modified: mod, Date: built,
		Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	if (b.Version == "" || b.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	var vcsRev, vcsMod, vcsTime string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.modified":
			vcsMod = s.Value
		case "vcs.time":
			vcsTime = s.Value
		}
	}
	if b.Commit == "" {
		b.Commit, b.Modified = vcsRev, vcsMod
	}
	if b.Date == "" && b.Commit == vcsRev {
		b.Committed = vcsTime
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// String is one line of key=value pairs after the version, so a log search or a script can
// read it: tailgate v0.1.0 commit=… modified=false built=… go=go1.26.8 platform=linux/amd64
func (b buildInfo) String() string {
	var sb strings.Builder
	sb.WriteString("tailgate ")
	sb.WriteString(b.Version)
	field := func(k, v string) {
		if v == "" {
			v = "unknown"
		}
		sb.WriteString(" " + k + "=" + v)
	}
	field("commit", b.Commit)
	field("modified", b.Modified)
	if b.Date != "" || b.Committed == "" {
		field("built", b.Date)
	}
	if b.Committed != "" {
		field("committed", b.Committed)
	}
	field("go", b.Go)
	field("platform", b.Platform)
	return sb.String()
}

// buildInfoCollector is tailgate_build_info{version,revision,modified,goversion} 1, the
// Prometheus convention for telling which build runs on which node.
func buildInfoCollector(b buildInfo) prometheus.Collector {
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tailgate_build_info",
		Help: "Always 1; the labels name the build: version, VCS revision, whether the tree was modified, Go version.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": unknown(b.Commit), "modified": unknown(b.Modified), "goversion": b.Go,
		},
	}, func() float64 { return 1 })
}
