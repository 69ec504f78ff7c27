package collector

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadFullConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/config/full.yaml", LoadOptions{Getenv: func(k string) string {
		if k == "NODE_NAME" {
			return "node-7"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "node-7" {
		t.Errorf("node_name = %q, want node-7 from ${NODE_NAME}", cfg.NodeName)
	}
	if cfg.Buffer.MaxBytes != 2<<30 || cfg.Buffer.SegmentBytes != 64<<20 || cfg.Buffer.Sync.D() != 200*time.Millisecond {
		t.Errorf("buffer = %+v", cfg.Buffer)
	}
	if in := cfg.Inputs[0]; in.MaxLineBytes != 256<<10 || in.PollInterval.D() != DefaultPollInterval || in.MaxOpenFiles != DefaultMaxOpenFiles {
		t.Errorf("tail input = %+v", in)
	}
	if in := cfg.Inputs[1]; in.MaxChunkBytes != DefaultMaxChunkBytes || in.Listen != "0.0.0.0:24224" ||
		in.HandshakeTimeout.D() != DefaultHandshakeTimeout || in.FrameTimeout.D() != DefaultFrameTimeout ||
		in.MaxConnectionsPerPeer != DefaultMaxConnectionsPerPeer || in.MaxBufferedBytes != DefaultMaxBufferedBytes {
		t.Errorf("forward input = %+v", in)
	}
	if m := cfg.Metrics; m.MaxSeries != 100_000 || m.PodResources.LogDir != "/var/log/pods" || m.PodResources.Cgroup ||
		m.PodResources.Interval.D() != 15*time.Second || m.PodResources.CgroupRoot != "/sys/fs/cgroup" {
		t.Errorf("metrics defaults = %+v", m)
	}
	if len(cfg.Sinks) != 4 || cfg.Sinks[3].LogStream != "{pod}/{container}" {
		t.Errorf("sinks = %+v", cfg.Sinks)
	}
}

func TestConfigErrorsCarryFileAndLine(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		_, err := LoadConfig(file, LoadOptions{})
		var ce ConfigErrors
		if !errors.As(err, &ce) {
			t.Fatalf("%s: error %v is not ConfigErrors", file, err)
		}
		got := err.Error()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: errors\n%s\nlack %q", file, got, w)
			}
		}
	}
	f("testdata/config/bad.yaml", "testdata/config/bad.yaml:3: ", `bad sync "sometimes"`)
	f("testdata/config/invalid.yaml",
		`invalid.yaml:3: buffer.when_full: "maybe" is not one of block, drop_oldest`,
		`invalid.yaml:8: input "pods": format "syslog" is not one of auto, cri, docker`,
		`invalid.yaml:9: input "pods": key listen does not apply to type tail`,
		`invalid.yaml:10: inputs[1].name: "pods" is used twice`,
		`input "pods": listen or socket is required`,
		`sink "local": path is required for type file`,
		`routes[0].match.input: no input is named "nope"`,
		`routes[0].sinks: no sink is named "missing"`)
}

func TestConfigTable(t *testing.T) {
	base := "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: s, type: stdout}]\n"
	f := func(name, yaml, wantErr string) {
		t.Helper()
		_, err := ParseConfig("c.yaml", []byte(yaml), LoadOptions{})
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", name, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: error %v, want it to contain %q", name, err, wantErr)
		}
	}
	f("minimal", base, "")
	f("unknown top key", base+"bogus: 1\n", `c.yaml:3: unknown field "bogus"`)
	f("unknown nested key", base+"buffer: {max_byte: 1GiB}\n", `unknown field "max_byte"`)
	f("bad size", base+"buffer: {max_bytes: lots}\n", `bad size "lots"`)
	f("bad duration", base+"shutdown_timeout: soon\n", `bad duration "soon"`)
	f("sync always", base+"buffer: {sync: always}\n", "")
	f("tiny buffer", base+"buffer: {max_bytes: 10MiB, segment_bytes: 8MiB}\n", "at least two segments")
	f("no sinks", "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\n", "at least one sink")
	f("bad glob", "inputs: [{name: p, type: tail, paths: ['/x/[.log']}]\nsinks: [{name: s, type: stdout}]\n", "bad glob")
	f("wrong sink key", "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: s, type: stdout, topic: t}]\n", "key topic does not apply to type stdout")
	f("bad metrics listen", base+"metrics: {listen: nocolon}\n", "metrics.listen")
	f("metrics budget and resources", base+"metrics: {max_series: 5000, pod_resources: {cgroup: true, interval: 30s}}\n", "")
	f("negative budget", base+"metrics: {max_series: -1}\n", "c.yaml:3: metrics.max_series: must not be negative")
	f("fast resource scans", base+"metrics: {pod_resources: {interval: 10ms}}\n", "metrics.pod_resources.interval: must be at least 1s")
	f("cgroup without root", base+"metrics: {pod_resources: {cgroup: true, cgroup_root: ''}}\n", "cgroup_root: must not be empty")
	f("unknown resources key", base+"metrics: {pod_resources: {cgroups: true}}\n", `unknown field "cgroups"`)
	f("syntax", base+"inputs: [\n", "c.yaml:3:")
	f("duplicate key", base+"inputs: []\n", `c.yaml:3: mapping key "inputs" already defined`)
	two := "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: a, type: stdout}, {name: b, type: stdout}]\n"
	f("route selector", two+"routes:\n  - {match: {labels: 'app in (cart,web),!canary'}, sinks: [a]}\n", "")
	f("route label globs", two+"routes:\n  - {match: {labels: {app: 'cart*'}, workload: 'api-*', stream: stderr}, sinks: [a]}\n", "")
	f("route drops", two+"routes:\n  - {match: {namespace: 'kube-*'}, sinks: []}\n", "")
	f("route bad selector", two+"routes:\n  - match: {labels: 'app in (cart'}\n    sinks: [a]\n", `c.yaml:4: labels: bad selector "app in (cart"`)
	f("route unknown sink", two+"routes:\n  - match: {namespace: x}\n    sinks: [a, c]\n", `c.yaml:5: routes[0].sinks: no sink is named "c"`)
	f("route without sinks", two+"routes:\n  - match: {namespace: x}\n", `routes[0].sinks: missing (list the sinks, or sinks: [] to drop what matches)`)
	f("route bad stream", two+"routes:\n  - match: {stream: both}\n    sinks: [a]\n", `c.yaml:4: routes[0].match: stream "both" is not one of stdout, stderr, app`)
	f("workload without watch", two+"kubernetes: {enabled: false}\nroutes:\n  - match: {workload: x}\n    sinks: [a]\n", "workloads come from the Kubernetes watch")
	f("rate limit", "inputs: [{name: p, type: tail, paths: [/x/*.log], rate_limit: {lines: 500, bytes: 1MiB, burst: 2s, max_lag: 32MiB}}]\nsinks: [{name: s, type: stdout}]\n", "")
	f("negative rate limit", "inputs:\n  - {name: p, type: tail, paths: [/x/*.log], rate_limit: {lines: -1}}\nsinks: [{name: s, type: stdout}]\n", `c.yaml:2: input "p": rate_limit: lines and bytes must not be negative`)
	f("rate limit on forward", "inputs: [{name: f, type: forward, listen: '127.0.0.1:0', rate_limit: {lines: 5}}]\nsinks: [{name: s, type: stdout}]\n", "key rate_limit does not apply to type forward")
	f("kubernetes keys", base+"kubernetes: {labels: [app, 'app.kubernetes.io/*'], annotations: [team], wait_for_pod: 5s}\n", "")
	f("bad label pattern", base+"kubernetes:\n  labels: ['[app']\n", `c.yaml:4: kubernetes.labels: bad pattern "[app"`)
	f("bad annotation pattern", base+"kubernetes:\n  annotations: ['']\n", `c.yaml:4: kubernetes.annotations: bad pattern ""`)
	f("long wait", base+"kubernetes:\n  wait_for_pod: 5m\n", `c.yaml:4: kubernetes.wait_for_pod: 5m0s is not between 0 and 1m`)

	tail := func(keys string) string {
		return "inputs:\n  - name: p\n    type: tail\n    paths: [/x/*.log]\n" + keys + "sinks: [{name: s, type: stdout}]\n"
	}
	f("multiline", tail("    multiline: {detect: [java, python, go, node, ruby, dotnet], max_lines: 500, max_bytes: 128KiB, flush_after: 2s}\n    detect_level: true\n"), "")
	f("multiline custom", tail("    multiline: {start: '^\\d{4}-', continue: '^\\s'}\n"), "")
	f("multiline language", tail("    multiline: {detect: [cobol]}\n"), `c.yaml:5: input "p": multiline.detect: unknown language "cobol"`)
	f("multiline regexp", tail("    multiline: {start: '('}\n"), `c.yaml:5: input "p": multiline.start: error parsing regexp`)
	f("multiline key", tail("    multiline: {detekt: [java]}\n"), `unknown field "detekt"`)
	f("filters", tail("    filters: [{action: drop, namespace: kube-*}, {action: keep, message: 'x', reason: noise}]\n    redact: [{pattern: 'password=\\S+', replacement: 'password=***'}]\n"), "")
	f("filter action", tail("    filters: [{action: ignore, message: x}]\n"), `c.yaml:5: input "p": filters[0].action "ignore" is not one of drop, keep`)
	f("filter empty", tail("    filters: [{action: drop}]\n"), "filters[0]: set at least one of namespace, container, message")
	f("filter regexp", tail("    filters: [{action: drop, message: '['}]\n"), "filters[0].message: error parsing regexp")
	f("redact empty match", tail("    redact: [{pattern: 'x*'}]\n"), "redact[0].pattern matches the empty string")
	f("multiline on forward", "inputs: [{name: f, type: forward, listen: ':1', multiline: {detect: [java]}}]\nsinks: [{name: s, type: stdout}]\n",
		"key multiline does not apply to type forward")
	f("filters on forward", "inputs: [{name: f, type: forward, listen: ':1', filters: [{action: drop, message: x}]}]\nsinks: [{name: s, type: stdout}]\n", "")

	cl := "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: l, type: cloud_logging, "
	f("cloud_logging GKE defaults", cl+"project: p}]\n", "")
	f("cloud_logging all keys", cl+"project: p, log_id: '{namespace}', location: europe-west1, cluster_name: c, stdout_severity: DEBUG, "+
		"stderr_severity: WARNING, future_timestamp: dead_letter, oversize: split, max_entry_bytes: 200KiB, "+
		"max_entries_per_request: 500, request_timeout: 30s, permission_retry: 5m}]\n", "")
	f("cloud_logging bad oversize", cl+"oversize: cut}]\n", `oversize "cut" is not one of split, truncate, dead_letter`)
	f("cloud_logging bad future", cl+"future_timestamp: keep}]\n", "future_timestamp \"keep\" is not one of clamp, dead_letter")
	f("cloud_logging entry too big", cl+"max_entry_bytes: 1MiB}]\n", "max_entry_bytes must be between 4KiB and 256KiB")
	f("cloud_logging key of pubsub", cl+"topic: t}]\n", "key topic does not apply to type cloud_logging")
	f("bad oversize", "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: s, type: pubsub, project: p, topic: t, oversize: cut}]\n",
		`oversize "cut" is not one of split, truncate, dead_letter`)
	ps := "inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: s, type: pubsub, project: p, topic: t, oversize: %s}]\n"
	f("pubsub oversize split", fmt.Sprintf(ps, "split"), "")
	f("pubsub oversize dead_letter", fmt.Sprintf(ps, "dead_letter"), "")
	fwd := "sinks: [{name: s, type: stdout}]\ninputs: [{name: a, type: forward, listen: ':24224', "
	f("forward limits", fwd+"handshake_timeout: 5s, frame_timeout: 1m, max_connections_per_peer: 8, max_buffered_bytes: 64MiB}]\n", "")
	f("forward budget below a chunk", fwd+"max_chunk_bytes: 8MiB, max_buffered_bytes: 1MiB}]\n", "max_buffered_bytes (1048576) must hold one max_chunk_bytes frame")
	f("forward limit on tail", "sinks: [{name: s, type: stdout}]\ninputs: [{name: p, type: tail, paths: [/x/*.log], frame_timeout: 1s}]\n", "key frame_timeout does not apply to type tail")
	f("pprof", base+"metrics: {listen: '127.0.0.1:2020', pprof: true}\n", "")
	f("pprof without listen", base+"metrics: {listen: '', pprof: true}\n", "metrics.pprof: needs metrics.listen")
}

func TestKubernetesDefaults(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("inputs: [{name: p, type: tail, paths: [/x/*.log]}]\nsinks: [{name: s, type: stdout}]\n"),
		LoadOptions{Getenv: func(k string) string {
			if k == "NODE_NAME" {
				return "node-from-env"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kubernetes
	if !k.Enabled || len(k.Labels) != 1 || k.Labels[0] != "*" || len(k.Annotations) != 0 || k.WaitForPod.D() != 2*time.Second {
		t.Errorf("kubernetes defaults %+v", k)
	}
	if cfg.NodeName != "node-from-env" {
		t.Errorf("node_name %q: want $NODE_NAME when the key is absent", cfg.NodeName)
	}
}

func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	notDir := dir + "/file"
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	y := "data_dir: " + notDir + "/data\ninputs: [{name: p, type: tail, paths: [/nonexistent-dir-xyz/*.log]}]\nsinks: [{name: s, type: file, path: " + dir + "/out/x.jsonl}]\n"
	_, err := ParseConfig("c.yaml", []byte(y), LoadOptions{CheckPaths: true})
	if err == nil || !strings.Contains(err.Error(), "c.yaml:1: data_dir: a parent of") || !strings.Contains(err.Error(), "nonexistent-dir-xyz") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseConfig("c.yaml", []byte(y), LoadOptions{}); err != nil {
		t.Fatalf("without CheckPaths: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "2GiB": 2 << 30, "256KiB": 256 << 10, "10MB": 10e6, "1000": 1000, "1.5KiB": 1536} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "1XB", "NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "0x10", "0x1p4",
		"1_000", "-0.5KiB", "4TiB0", "8EiB", "5000000TiB", "1e300", "9223372036854775807"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d: want an error", in, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"200ms": 200 * time.Millisecond, "10s": 10 * time.Second, " 5m ": 5 * time.Minute, "0": 0, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1s", "soon", "NaN", "Inf", "1e3s", "9999999999999999999h", "3000000h"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v: want an error", in, got)
		}
	}
}

// FuzzParseSize: a size is never negative, and an accepted string is a finite number.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5KiB", "NaN", "-1", "1e3", "0x10", "8EiB", "Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseSize(%q) = %d with no error", s, v)
		}
	})
}

// FuzzParseDuration: a duration is never negative.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"200ms", "-1s", "NaN", "9999999999999999999h", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDuration(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseDuration(%q) = %v with no error", s, v)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/config/full.yaml", "testdata/config/bad.yaml", "testdata/config/invalid.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseConfig("fuzz.yaml", data, LoadOptions{Getenv: func(string) string { return "" }})
	})
}

func TestRouter(t *testing.T) {
	r, err := NewRouter([]RouteConfig{
		{Match: RouteMatch{Input: "apps"}, Sinks: []string{"pubsub"}},
		{Match: RouteMatch{Input: "pods", Namespace: "kube-*"}, Sinks: []string{"logging"}},
		{Match: RouteMatch{Labels: LabelMatch{Globs: map[string]string{"team": "pay*"}}}, Sinks: []string{"pubsub", "logging"}},
	}, []string{"local", "pubsub", "logging"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(s *Source, want uint64) {
		t.Helper()
		if got := r.Route(s); got != want {
			t.Errorf("Route(%s %+v) = %b, want %b", s.Input, s.Kube(), got, want)
		}
	}
	f(NewSource(1, "apps", nil), 0b010)
	f(NewSource(2, "pods", &Kube{Namespace: "kube-system"}), 0b100)
	f(NewSource(3, "pods", &Kube{Namespace: "shop", Labels: map[string]string{"team": "payments"}}), 0b110)
	f(NewSource(4, "pods", &Kube{Namespace: "shop"}), 0)
	all, _ := NewRouter(nil, []string{"a", "b"})
	if all.Route(NewSource(5, "x", nil)) != 0b11 {
		t.Error("no routes must send everything everywhere")
	}
	if _, err := NewRouter([]RouteConfig{{Sinks: []string{"nope"}}}, []string{"a"}); err == nil {
		t.Error("unknown sink accepted")
	}
}

// TestRouterMatches: first match wins, on input, namespace glob, labels as globs or as a
// kubectl -l selector, workload, container and stream; sinks: [] drops.
func TestRouterMatches(t *testing.T) {
	r, err := NewRouter([]RouteConfig{
		{Match: RouteMatch{Namespace: "kube-*", Stream: "stderr"}, Sinks: []string{"alerts"}},
		{Match: RouteMatch{Namespace: "kube-*"}, Sinks: []string{}},
		{Match: RouteMatch{Labels: LabelMatch{Selector: "app in (cart,checkout),tier!=db,!canary"}}, Sinks: []string{"shop"}},
		{Match: RouteMatch{Workload: "batch-*", Container: "main"}, Sinks: []string{"batch"}},
		{Match: RouteMatch{Input: "apps"}, Sinks: []string{"shop", "batch"}},
	}, []string{"alerts", "shop", "batch", "rest"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(input string, k *Kube, st Stream, want uint64) {
		t.Helper()
		if got := r.RouteStream(NewSource(1, input, k), st); got != want {
			t.Errorf("%s %+v %v: %b, want %b", input, k, st, got, want)
		}
	}
	sys := &Kube{Namespace: "kube-system", Pod: "coredns-1", Container: "coredns"}
	f("pods", sys, StreamStderr, 0b0001)
	f("pods", sys, StreamStdout, RouteDrop) // the drop route, after the stderr one
	cart := func(l map[string]string) *Kube { return &Kube{Namespace: "shop", Labels: l} }
	f("pods", cart(map[string]string{"app": "cart", "tier": "web"}), StreamStdout, 0b0010)
	f("pods", cart(map[string]string{"app": "checkout"}), StreamStdout, 0b0010)
	f("pods", cart(map[string]string{"app": "cart", "tier": "db"}), StreamStdout, 0)
	f("pods", cart(map[string]string{"app": "cart", "canary": "1"}), StreamStdout, 0)
	f("pods", cart(map[string]string{"app": "search"}), StreamStdout, 0)
	f("pods", &Kube{Namespace: "jobs", Workload: "batch-nightly", WorkloadKind: "CronJob", Container: "main"}, StreamStdout, 0b0100)
	f("pods", &Kube{Namespace: "jobs", Workload: "batch-nightly", Container: "sidecar"}, StreamStdout, 0)
	f("apps", &Kube{Node: "n1"}, StreamApp, 0b0110)
	f("apps", nil, StreamApp, 0b0110)
	// A version 1 frame has no per-record mask: its records go where any stream of the
	// source may go, never to "drop".
	if got := r.Route(NewSource(1, "pods", sys)); got != 0b0001 {
		t.Errorf("Route = %b", got)
	}
	if _, err := NewRouter([]RouteConfig{{Match: RouteMatch{Labels: LabelMatch{Selector: "app in (a"}}, Sinks: []string{"a"}}}, []string{"a"}); err == nil {
		t.Error("bad selector accepted")
	}
	if _, err := NewRouter([]RouteConfig{{Match: RouteMatch{Stream: "both"}, Sinks: []string{"a"}}}, []string{"a"}); err == nil {
		t.Error("bad stream accepted")
	}
}

// TestCheckBufferFitsVolume: check refuses a buffer.max_bytes larger than the volume that
// holds data_dir, at the key's line.
func TestCheckBufferFitsVolume(t *testing.T) {
	dir := t.TempDir()
	y := "data_dir: " + dir + "/data\nbuffer:\n  max_bytes: 1000TiB\ninputs: [{name: p, type: tail, paths: [" + dir + "/*.log]}]\nsinks: [{name: s, type: stdout}]\n"
	_, err := ParseConfig("c.yaml", []byte(y), LoadOptions{CheckPaths: true})
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3: buffer.max_bytes: 1099511627776000 bytes do not fit the volume of "+dir) {
		t.Fatalf("err = %v", err)
	}
	ok := strings.Replace(y, "1000TiB", "256MiB", 1)
	if _, err := ParseConfig("c.yaml", []byte(ok), LoadOptions{CheckPaths: true}); err != nil {
		t.Fatalf("a buffer that fits: %v", err)
	}
}
