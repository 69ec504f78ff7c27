package exporter

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

const (
	uidCart    = "0f9d6c2e-1b7a-4c3e-9f00-6a1b2c3d4e5f"
	uidCoreDNS = "7a1e2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b"
	uidJob     = "c0ffee00-1234-4abc-8def-001122334455"
)

// copyTree copies a testdata tree into a temp dir, so a test can change it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func ctrKey(name, ns, pod, ctr string) string {
	return seriesKey(name, "namespace", ns, "pod", pod, "container", ctr)
}

func newTestPods(clock *fakeClock, o Options) *Pods {
	p := NewPods(o)
	for _, set := range []func(func() time.Time){
		func(f func() time.Time) { p.logs.t.now = f },
		func(f func() time.Time) { p.tail.t.now = f; p.tail.now = f },
		func(f func() time.Time) { p.disk.t.now = f },
		func(f func() time.Time) { p.cgroup.t.now = f },
		func(f func() time.Time) { p.info.t.now = f },
	} {
		set(clock.now)
	}
	return p
}

// scrapeEvery scrapes p n times, 10 s apart, and returns the last exposition.
func scrapeEvery(t *testing.T, clock *fakeClock, p *Pods, n int) exposition {
	t.Helper()
	var e exposition
	for range n {
		clock.add(10 * time.Second)
		out := scrape(t, p)
		e = parseProm(t, out)
		parseExpfmt(t, out)
	}
	return e
}

// The disk scan reads testdata/varlogpods: a pod with two containers (rotated, compressed
// and restarted files), a pod with an empty log, and entries that are not pod directories.
func TestPodDiskScan(t *testing.T) {
	root := copyTree(t, "testdata/varlogpods")
	clock := newFakeClock()
	p := newTestPods(clock, Options{})
	o := ResourceOptions{LogDir: root}
	p.ScanResources(o)
	e := scrapeEvery(t, clock, p, 1)
	want := map[string]float64{
		ctrKey(PodLogDiskBytesName, "shop", "cart-7d9f", "app"):               100 + 10*56 + 3*56,
		ctrKey(PodLogDiskFilesName, "shop", "cart-7d9f", "app"):               3,
		ctrKey(PodRestartsName, "shop", "cart-7d9f", "app"):                   1,
		ctrKey(PodLogDiskBytesName, "shop", "cart-7d9f", "istio-proxy"):       56,
		ctrKey(PodLogDiskFilesName, "shop", "cart-7d9f", "istio-proxy"):       1,
		ctrKey(PodRestartsName, "shop", "cart-7d9f", "istio-proxy"):           0,
		ctrKey(PodLogDiskBytesName, "kube-system", "coredns-5d78", "coredns"): 0,
		ctrKey(PodLogDiskFilesName, "kube-system", "coredns-5d78", "coredns"): 1,
		ctrKey(PodRestartsName, "kube-system", "coredns-5d78", "coredns"):     0,
		seriesKey(SeriesName):        9,
		seriesKey(SeriesLimitName):   DefaultMaxSeries,
		seriesKey(SeriesRefusedName): 0,
	}
	checkSamples(t, e, want)
	for _, name := range []string{PodLogDiskBytesName, PodLogDiskFilesName, PodRestartsName} {
		if len(e.types[name]) != 1 || e.types[name][0] != model.MetricTypeGauge {
			t.Errorf("%s TYPE %v, want one gauge", name, e.types[name])
		}
	}

	// The runtime writes, the kubelet rotates: the next scan sees it.
	appLog := filepath.Join(root, "shop_cart-7d9f_"+uidCart, "app", "1.log")
	if err := os.WriteFile(appLog, bytes.Repeat([]byte("x"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	p.ScanResources(o)
	e = scrapeEvery(t, clock, p, 1)
	if got := e.samples[ctrKey(PodLogDiskBytesName, "shop", "cart-7d9f", "app")]; got != 100+10*56+1000 {
		t.Errorf("after a write: app disk bytes = %v", got)
	}

	// The pod is deleted and the kubelet removes its logs: its series go two intervals later.
	if err := os.RemoveAll(filepath.Join(root, "kube-system_coredns-5d78_"+uidCoreDNS)); err != nil {
		t.Fatal(err)
	}
	p.ScanResources(o)
	e = scrapeEvery(t, clock, p, 1)
	if _, ok := e.samples[ctrKey(PodLogDiskBytesName, "kube-system", "coredns-5d78", "coredns")]; !ok {
		t.Error("a removed pod's series went before two scrape intervals")
	}
	e = scrapeEvery(t, clock, p, 2)
	if _, ok := e.samples[ctrKey(PodLogDiskBytesName, "kube-system", "coredns-5d78", "coredns")]; ok {
		t.Error("a removed pod's series still exposed after two scrape intervals")
	}
	if e.samples[seriesKey(SeriesName)] != 6 {
		t.Errorf("series gauge = %v, want 6", e.samples[seriesKey(SeriesName)])
	}
}

func checkSamples(t *testing.T, e exposition, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got, ok := e.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// The cgroup scan reads fake cgroup v2 trees of both kubelet cgroup drivers: a guaranteed, a
// burstable (with a container cgroup inside, not counted twice) and a best-effort pod whose
// memory controller is off. Pods are named by the log directory scan, or by the watch.
func TestPodCgroupScan(t *testing.T) {
	for _, driver := range []string{"systemd", "cgroupfs"} {
		t.Run(driver, func(t *testing.T) {
			clock := newFakeClock()
			p := newTestPods(clock, Options{})
			p.PodSeen(PodInfo{Namespace: "batch", Name: "job-1", UID: uidJob}) // no log dir yet: named by the watch
			p.ScanResources(ResourceOptions{LogDir: "testdata/varlogpods", Cgroup: true, CgroupRoot: filepath.Join("testdata/cgroup", driver)})
			e := scrapeEvery(t, clock, p, 1)
			pk := func(name, ns, pod string) string { return seriesKey(name, "namespace", ns, "pod", pod) }
			checkSamples(t, e, map[string]float64{
				pk(PodCPUName, "shop", "cart-7d9f"):                        2.5,
				pk(PodCPUThrottledName, "shop", "cart-7d9f"):               0,
				pk(PodMemoryWorkingSetName, "shop", "cart-7d9f"):           4e6, // 5e6 current - 1e6 inactive_file
				pk(PodOOMKillsName, "shop", "cart-7d9f"):                   0,
				pk(PodCPUName, "kube-system", "coredns-5d78"):              1.25,
				pk(PodCPUThrottledName, "kube-system", "coredns-5d78"):     0.75,
				pk(PodMemoryWorkingSetName, "kube-system", "coredns-5d78"): 0, // inactive_file > current
				pk(PodOOMKillsName, "kube-system", "coredns-5d78"):         2,
				pk(PodCPUName, "batch", "job-1"):                           0.00001,
				pk(PodMemoryWorkingSetName, "batch", "job-1"):              0,
			})
			n := 0
			for k := range e.samples {
				if strings.HasPrefix(k, "{__name__=\""+PodCPUName+"\"") {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d pods with CPU series, want 3", n)
			}
		})
	}
}

func TestPodCgroupUID(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		got, ok := podCgroupUID(name)
		if got != want || ok != (want != "") {
			t.Errorf("podCgroupUID(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	f("kubepods-burstable-pod7a1e2b3c_4d5e_4f60_8a9b_0c1d2e3f4a5b.slice", uidCoreDNS)
	f("kubepods-pod0f9d6c2e_1b7a_4c3e_9f00_6a1b2c3d4e5f.slice", uidCart)
	f("pod"+uidJob, uidJob)
	f("kubepods-burstable.slice", "")
	f("cri-containerd-4f1e2d3c.scope", "")
	f("podcast", "")
	f("ipod"+uidJob, "")
	f("pod"+strings.ToUpper(uidJob), "")
}

// A root that is not cgroup v2 is reported (rate-limited), and the disk scan still runs.
func TestPodCgroupScanNotV2(t *testing.T) {
	var logs bytes.Buffer
	clock := newFakeClock()
	p := newTestPods(clock, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		p.ScanResources(ResourceOptions{LogDir: "testdata/varlogpods", Cgroup: true, CgroupRoot: t.TempDir()})
	}
	if n := strings.Count(logs.String(), "pod cgroup scan failed"); n != 1 {
		t.Errorf("%d warnings for 3 failed scans, want 1:\n%s", n, logs.String())
	}
	e := scrapeEvery(t, clock, p, 1)
	if _, ok := e.samples[ctrKey(PodLogDiskFilesName, "shop", "cart-7d9f", "app")]; !ok {
		t.Error("disk series missing when the cgroup scan fails")
	}
}

// Tail progress: per-file sizes and offsets summed per container, with a rotation, a
// copytruncate and a file deleted before it was read to its end.
func TestPodTailProgress(t *testing.T) {
	clock := newFakeClock()
	p := newTestPods(clock, Options{})
	key := func(name string) string { return ctrKey(name, "shop", "cart", "app") }
	check := func(step string, written, read, lag float64) {
		t.Helper()
		e := scrapeEvery(t, clock, p, 1)
		checkSamples(t, e, map[string]float64{key(PodLogWrittenName): written, key(PodLogReadName): read, key(PodLogLagName): lag})
		if t.Failed() {
			t.Fatalf("after %s", step)
		}
	}
	p.FileProgress(1, 10, "shop", "cart", "app", 1000, 400)
	check("first report", 1000, 400, 600)
	p.FileProgress(1, 10, "shop", "cart", "app", 1500, 1500)
	check("growth", 1500, 1500, 0)
	p.FileProgress(1, 11, "shop", "cart", "app", 200, 0) // rotation: a new file beside the old one
	p.FileProgress(1, 10, "shop", "cart", "app", 1600, 1550)
	check("rotation", 1800, 1550, 50+200)
	p.FileClosed(1, 10) // deleted with 50 bytes unread: they leave the lag
	check("closed", 1800, 1550, 200)
	p.FileProgress(1, 11, "shop", "cart", "app", 300, 300)
	p.FileProgress(1, 11, "shop", "cart", "app", 80, 0) // copytruncate: 80 new bytes
	check("truncated", 1900+80, 1850, 80)
	p.FileClosed(1, 11)
	p.FileClosed(1, 11) // twice: ignored
	check("all closed", 1980, 1850, 0)
	e := scrapeEvery(t, clock, p, 2)
	if _, ok := e.samples[key(PodLogWrittenName)]; ok {
		t.Error("series of a container with no file left still exposed after two intervals")
	}
}

// The budget refuses new series past metrics.max_series, counts the refusals, and frees room
// when series are removed.
func TestSeriesBudget(t *testing.T) {
	clock := newFakeClock()
	p := newTestPods(clock, Options{MaxSeries: 5}) // a log series is 2 samples, a tail series 3
	a := p.Logs().Acquire("ns", "a", "c", "stdout")
	b := p.Logs().Acquire("ns", "b", "c", "stdout")
	if a == nil || b == nil {
		t.Fatal("refused within the budget")
	}
	if c := p.Logs().Acquire("ns", "c", "c", "stdout"); c != nil {
		t.Fatal("a series past the budget was created")
	}
	c := p.Logs().Acquire("ns", "a", "c", "stdout") // an existing one is not new
	if c != a {
		t.Fatal("existing series refused")
	}
	p.FileProgress(1, 1, "ns", "a", "c", 10, 10) // 3 more: refused, retried after 10 s
	p.FileProgress(1, 1, "ns", "a", "c", 20, 20)
	e := scrapeEvery(t, clock, p, 1)
	checkSamples(t, e, map[string]float64{
		seriesKey(SeriesName): 4, seriesKey(SeriesLimitName): 5, seriesKey(SeriesRefusedName): 2,
	})
	p.Logs().Release(b)
	p.Logs().Release(a)
	p.Logs().Release(c)
	scrapeEvery(t, clock, p, 2)
	p.FileProgress(1, 1, "ns", "a", "c", 30, 25) // the retry, with room now
	e = scrapeEvery(t, clock, p, 1)
	checkSamples(t, e, map[string]float64{
		seriesKey(SeriesName): 3, seriesKey(SeriesRefusedName): 2,
		ctrKey(PodLogWrittenName, "ns", "a", "c"): 30, ctrKey(PodLogLagName, "ns", "a", "c"): 5,
	})
}

// tailgate_pod_info: one series per pod the watch knows, replaced at once when its workload or
// phase changes, gone two scrape intervals after the pod.
func TestPodInfo(t *testing.T) {
	clock := newFakeClock()
	p := newTestPods(clock, Options{})
	info := func(phase, uid string) PodInfo {
		return PodInfo{Namespace: "shop", Name: "cart-7d9f-x", UID: uid, WorkloadKind: "Deployment", Workload: "cart", Phase: phase}
	}
	key := func(phase string) string {
		return seriesKey(PodInfoName, "namespace", "shop", "pod", "cart-7d9f-x", "workload_kind", "Deployment", "workload", "cart", "phase", phase)
	}
	count := func(e exposition) int {
		n := 0
		for k := range e.samples {
			if strings.HasPrefix(k, `{__name__="`+PodInfoName+`"`) {
				n++
			}
		}
		return n
	}
	p.PodSeen(info("Pending", "u1"))
	p.PodSeen(info("Pending", "u1"))
	e := scrapeEvery(t, clock, p, 1)
	if e.samples[key("Pending")] != 1 || count(e) != 1 {
		t.Fatalf("after seen: %v", e.samples)
	}
	p.PodSeen(info("Running", "u1"))
	e = scrapeEvery(t, clock, p, 1)
	if e.samples[key("Running")] != 1 || count(e) != 1 {
		t.Fatalf("after the phase changed: want only the Running series: %v", e.samples)
	}
	p.PodSeen(info("Running", "u2")) // recreated under the same name with the same labels
	p.PodDeleted("shop", "cart-7d9f-x", "u1")
	e = scrapeEvery(t, clock, p, 3)
	if e.samples[key("Running")] != 1 || count(e) != 1 {
		t.Fatalf("a deletion of the older uid removed the newer pod's info: %v", e.samples)
	}
	p.PodDeleted("shop", "cart-7d9f-x", "u2")
	if e = scrapeEvery(t, clock, p, 1); count(e) != 1 {
		t.Fatal("info series gone before two scrape intervals")
	}
	if e = scrapeEvery(t, clock, p, 2); count(e) != 0 {
		t.Fatalf("info series left after the pod was deleted: %v", e.samples)
	}
	if p.Len() != 0 {
		t.Errorf("%d series left", p.Len())
	}
}
