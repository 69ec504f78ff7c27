package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	calls := 0
	f.SetErrorAfterWrite(func(*loggingpb.WriteLogEntriesRequest) error {
		calls++
		if calls%4 == 2 {
			return status.Error(codes.Unavailable, "written, then the connection dropped")
		}
		return nil
	})
	dir := t.TempDir()
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := fmt.Sprintf(`node_name: cl-node
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms}
sinks:
  - {name: gcl, type: cloud_logging, project: tailgate-e2e, location: europe-west1, cluster_name: e2e,
     endpoint: "%s", insecure: true, batch_delay: 50ms}
`, dir, metrics, dir, f.Addr)
	a := newAgentProc(t, dir, cfg)
	a.listens = [][2]string{{"tcp", metrics}}
	w := newCRILogWriter(t, dir)

	a.start()
	w.write(300)
	waitQuery(t, f, 50, a)
	a.kill()
	w.write(200) // while the agent is down
	a.start()
	w.write(300)
	waitQuery(t, f, w.seq, a)

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`tailgate_cloud_logging_request_errors_total{code="Unavailable",sink="gcl"}`)) {
		t.Errorf("/metrics lacks the sink's request errors:\n%s", body)
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
