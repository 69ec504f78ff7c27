package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailgate-dev/tailgate/sinks/cloudlogging/loggingfake"
)

// criLogWriter writes one container's CRI log: JSON lines with a severity on stdout (every
// fifth split into partial chunks by the runtime) and text lines on stderr, each naming seq.
type criLogWriter struct {
	t    *testing.T
	f    *os.File
	seq  int
	sent map[int]string // seq -> the message as the container wrote it
}

func newCRILogWriter(t *testing.T, dir string) *criLogWriter {
	podDir := filepath.Join(dir, "pods", "shop_cart-7d9f_uid-1", "app")
	os.MkdirAll(podDir, 0o755)
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	path := filepath.Join(podDir, "0.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := os.Symlink(path, filepath.Join(dir, "containers", "cart-7d9f_shop_app-"+strings.Repeat("a", 64)+".log")); err != nil {
		t.Fatal(err)
	}
	return &criLogWriter{t: t, f: f, sent: map[int]string{}}
}

func (w *criLogWriter) write(n int) {
	var b bytes.Buffer
	for range n {
		ts := time.Now().UTC().Format(time.RFC3339Nano)
		if w.seq%2 == 0 {
			msg := fmt.Sprintf(`{"severity":"WARNING","message":"seq %d","seq":%d,"pad":"%s"}`, w.seq, w.seq, strings.Repeat("j", w.seq%150))
			if w.seq%5 == 0 {
				third := len(msg) / 3
				fmt.Fprintf(&b, "%s stdout P %s\n%s stdout P %s\n", ts, msg[:third], ts, msg[third:2*third])
				fmt.Fprintf(&b, "%s stdout F %s\n", ts, msg[2*third:])
			} else {
				fmt.Fprintf(&b, "%s stdout F %s\n", ts, msg)
			}
			w.sent[w.seq] = msg
		} else {
			msg := fmt.Sprintf("seq %d: upstream timeout after 250ms, retrying %s", w.seq, strings.Repeat("t", w.seq%90))
			fmt.Fprintf(&b, "%s stderr F %s\n", ts, msg)
			w.sent[w.seq] = msg
		}
		w.seq++
	}
	if _, err := w.f.Write(b.Bytes()); err != nil {
		w.t.Fatal(err)
	}
}

var seqRE = regexp.MustCompile(`seq (\d+)`)

// TestCloudLoggingAgent runs the agent binary tailing a CRI log into a cloud_logging sink on
// the in-process fake, which fails some requests with UNAVAILABLE after writing them; the agent
// is SIGKILLed once mid-run and restarted. A Cloud Logging query (entries of equal insertId
// and timestamp merged) then shows every line exactly once: JSON lines as jsonPayload with
// their severity taken out, text lines byte for byte as textPayload with ERROR, partial lines
// joined, on the k8s_container resource of the pod, in the stdout/stderr logs. The sink's
// metrics are on /metrics.
func TestCloudLoggingAgent(t *testing.T) {
	f := loggingfake.Start(t)
	var mu sync.Mutex
	calls, failNext := 0, false
	f.SetErrorAfterWrite(func(*loggingpb.WriteLogEntriesRequest) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%4 == 2 || failNext {
			failNext = false
			return status.Error(codes.Unavailable, "written, then the connection dropped")
		}
		return nil
	})
	a, metrics, w := startCloudLoggingAgent(t, f, "", "")

	a.start()
	w.write(300)
	waitQuery(t, f, 50, a)
	a.kill()
	w.write(200) // while the agent is down
	a.start()
	mu.Lock()
	failNext = true // at least one in this run, for the metric
	mu.Unlock()
	w.write(300)
	waitQuery(t, f, w.seq, a)

	if n := scrape(t, metrics)[series("tailgate_cloud_logging_request_errors_total", "code", "Unavailable", "sink", "gcl")]; n == 0 {
		t.Errorf("/metrics does not count the UNAVAILABLE requests")
	}
	a.stop()

	got := f.Query()
	if f.Len() <= len(got) {
		t.Errorf("fake stored %d entries for %d query results: no retry wrote twice, the dedup was not exercised", f.Len(), len(got))
	}
	seen := map[int]int{}
	for _, e := range got {
		var text string
		if p := e.GetJsonPayload(); p != nil {
			text = p.GetFields()["message"].GetStringValue()
		} else {
			text = e.GetTextPayload()
		}
		m := seqRE.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("entry without a seq: %s", e)
		}
		seq, _ := strconv.Atoi(m[1])
		seen[seq]++
		res := e.GetResource().GetLabels()
		if e.GetResource().GetType() != "k8s_container" || res["namespace_name"] != "shop" || res["pod_name"] != "cart-7d9f" ||
			res["container_name"] != "app" || res["cluster_name"] != "e2e" || res["location"] != "europe-west1" || res["project_id"] != "tailgate-e2e" {
			t.Fatalf("seq %d: resource %v", seq, e.GetResource())
		}
		if seq%2 == 0 {
			fields := e.GetJsonPayload().GetFields()
			if e.GetLogName() != "projects/tailgate-e2e/logs/stdout" || e.GetSeverity().String() != "WARNING" ||
				fields["seq"].GetNumberValue() != float64(seq) || fields["severity"] != nil ||
				fields["pad"].GetStringValue() != strings.Repeat("j", seq%150) {
				t.Fatalf("seq %d (%s): %s", seq, w.sent[seq], e)
			}
		} else if e.GetLogName() != "projects/tailgate-e2e/logs/stderr" || e.GetSeverity().String() != "ERROR" || e.GetTextPayload() != w.sent[seq] {
			t.Fatalf("seq %d: %s, want text %q", seq, e, w.sent[seq])
		}
	}
	for seq := range w.seq {
		if seen[seq] != 1 {
			t.Errorf("seq %d shows %d times in the query, want once", seq, seen[seq])
		}
	}
}

// waitQuery waits until the fake's query shows n entries.
func waitQuery(t *testing.T, f *loggingfake.Server, n int, a agentProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(f.Query()) < n {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(a.logf.Name())
			t.Fatalf("query shows %d entries after 60s, want %d\nagent log:\n%s", len(f.Query()), n, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCloudLoggingAgentRefusedAndLimits runs the agent into a fake that first refuses the
// project (PERMISSION_DENIED): nothing is written, nothing is dead-lettered, the refused gauge
// is up, and once the project is granted everything arrives. A 700 KB line (CRI partials
// joined) arrives as ordered parts under the entry limit that together are the line, with
// split uid and index. A line the API rejects (INVALID_ARGUMENT in a partial success) is
// dead-lettered with that reason, listed by `tailgate deadletter list`, and delivered by
// `tailgate deadletter replay` once the API takes it.
func TestCloudLoggingAgentRefusedAndLimits(t *testing.T) {
	f := loggingfake.Start(t)
	f.SetProject("not-this-one")
	rejecting := true
	var mu sync.Mutex
	f.SetEntryError(func(e *loggingpb.LogEntry) *status.Status {
		mu.Lock()
		defer mu.Unlock()
		if rejecting && strings.Contains(e.GetTextPayload(), "REJECT") {
			return status.New(codes.InvalidArgument, "entry refused by the test")
		}
		return nil
	})
	a, metrics, w := startCloudLoggingAgent(t, f, ", max_line_bytes: 2MiB", ", permission_retry: 1s")
	a.start()
	w.write(40)

	// One 700 KB line on stderr, as the runtime writes it: 16 KiB partial chunks.
	big := strings.Repeat("0123456789abcdef", 700_000/16) + " END"
	var b bytes.Buffer
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for rest := big; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		flag := "P"
		if n == len(rest) {
			flag = "F"
		}
		fmt.Fprintf(&b, "%s stderr %s %s\n", ts, flag, rest[:n])
		rest = rest[n:]
	}
	fmt.Fprintf(&b, "%s stderr F REJECT this line\n", ts)
	if _, err := w.f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}

	refused := series("tailgate_cloud_logging_refused", "sink", "gcl")
	waitMetric(t, metrics, refused, 1, a)
	if f.Len() != 0 {
		t.Fatalf("refused project, yet %d entries written", f.Len())
	}
	if n := scrape(t, metrics)[series("tailgate_sink_records_total", "result", "dead_letter", "sink", "gcl")]; n != 0 {
		t.Fatalf("%v records dead-lettered while the project was refused", n)
	}
	f.SetProject("tailgate-e2e")
	parts := (len(big) + 250_000) / 250_000
	waitQuery(t, f, w.seq+parts, a)
	waitMetric(t, metrics, refused, 0, a)
	a.stop()

	var joined strings.Builder
	var uid string
	index := int32(0)
	for _, e := range f.Query() {
		if e.GetSplit() == nil {
			continue
		}
		if uid == "" {
			uid = e.GetSplit().GetUid()
		}
		if e.GetSplit().GetUid() != uid || e.GetSplit().GetIndex() != index || e.GetSeverity().String() != "ERROR" {
			t.Fatalf("part %d: split %v severity %v", index, e.GetSplit(), e.GetSeverity())
		}
		if sizeOf := len(e.GetTextPayload()); sizeOf > loggingfake.MaxEntryBytes {
			t.Fatalf("part of %d bytes", sizeOf)
		}
		joined.WriteString(e.GetTextPayload())
		index++
	}
	if index < 3 || joined.String() != big {
		t.Fatalf("%d parts joining to %d bytes, want the %d-byte line", index, joined.Len(), len(big))
	}

	var out, errb bytes.Buffer
	if code := run([]string{"deadletter", "list", "--sink", "gcl", "--config", a.cfg}, &out, &errb); code != 0 {
		t.Fatalf("deadletter list: %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "total invalid_argument: 1 records") {
		t.Fatalf("deadletter list:\n%s", out.String())
	}
	mu.Lock()
	rejecting = false
	mu.Unlock()
	out.Reset()
	if code := run([]string{"deadletter", "replay", "--sink", "gcl", "--config", a.cfg}, &out, &errb); code != 0 {
		t.Fatalf("deadletter replay: %d\n%s%s", code, out.String(), errb.String())
	}
	found := false
	for _, e := range f.Query() {
		found = found || e.GetTextPayload() == "REJECT this line"
	}
	if !found {
		t.Fatalf("the replayed line did not arrive; replay said:\n%s", out.String())
	}
}

// waitMetric waits until /metrics has the series at value want.
func waitMetric(t *testing.T, addr, key string, want float64, a agentProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, ok := scrape(t, addr)[key]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(a.logf.Name())
			t.Fatalf("/metrics: %s = %v (present %v), want %v\nagent log:\n%s", key, got, ok, want, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCloudLoggingAgent configures the agent binary with a tail input on a CRI log tree and a
// cloud_logging sink on f (extra keys appended to each), and returns it with its metrics
// address and the tree's writer. The agent is not started.
func startCloudLoggingAgent(t *testing.T, f *loggingfake.Server, inputExtra, sinkExtra string) (agentProc, string, *criLogWriter) {
	dir := t.TempDir()
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := fmt.Sprintf(`node_name: cl-node
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms%s}
sinks:
  - {name: gcl, type: cloud_logging, project: tailgate-e2e, location: europe-west1, cluster_name: e2e,
     endpoint: "%s", insecure: true, batch_delay: 50ms%s}
`, dir, metrics, dir, inputExtra, f.Addr, sinkExtra)
	a := newAgentProc(t, dir, cfg)
	a.listens = [][2]string{{"tcp", metrics}}
	return a, metrics, newCRILogWriter(t, dir)
}

// TestCheckCloudLogging: `tailgate check` accepts a GKE cloud_logging sink with nothing but its
// type (project, location and cluster come from the metadata server at run time, which check
// does not contact), and refuses a value the sink would refuse at run time, naming its key.
func TestCheckCloudLogging(t *testing.T) {
	dir := t.TempDir()
	cfg := func(name, sink string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("data_dir: "+dir+"/data\ninputs:\n  - {name: p, type: tail, paths: [\""+dir+"/*.log\"]}\nsinks:\n  - "+sink+"\n"), 0o644)
		return p
	}
	if code, out, errOut := runCLI(t, "check", "--config", cfg("good.yaml", "{name: gcl, type: cloud_logging}")); code != 0 {
		t.Errorf("check of a GKE default sink: code %d, out %q, err %q", code, out, errOut)
	}
	for _, c := range []struct{ sink, want string }{
		{"{name: gcl, type: cloud_logging, stdout_severity: LOUD}", "stdout_severity"},
		{"{name: gcl, type: cloud_logging, log_id: '{nope}'}", "unknown placeholder {nope}"},
		{"{name: gcl, type: cloud_logging, future_timestamp: keep}", "future_timestamp"},
		{"{name: gcl, type: cloud_logging, oversize: drop}", "oversize"},
	} {
		code, _, errOut := runCLI(t, "check", "--config", cfg("bad.yaml", c.sink))
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("check of %s: code %d, err %q, want 1 and %q", c.sink, code, errOut, c.want)
		}
	}
}
