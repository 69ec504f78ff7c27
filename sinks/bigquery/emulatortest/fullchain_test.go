//go:build !race

package emulatortest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tailgate-dev/tailgate/sinks/pubsub/pubsubemu"
)

const fullChainNode = "fullchain-node"

// fullChain is the whole path as deployed: the agent binary tailing CRI logs and taking
// forward records into its disk buffer and a pubsub sink, Pub/Sub (pstest), the loader
// binary, and the BigQuery emulator. Both binaries are subprocesses the test kills.
type fullChain struct {
	t             *testing.T
	dir           string
	topic, sub    string
	agent, loader *proc
	agentMetrics  string
	loaderMetrics string
	fwdPort       int
	bq            *bigquery.Client
	ps            *pubsub.Client
}

// TestFullChainWithCrashes: tail files and forward records → buffer → Pub/Sub → loader →
// BigQuery emulator, with the agent and the loader each SIGKILLed and restarted
// while data flows; the dedup view then holds every record exactly once.
func TestFullChainWithCrashes(t *testing.T) { runFullChain(t, false) }

// TestFullChainRealEmulator is the same chain on the Cloud SDK's Pub/Sub emulator, with only
// the agent SIGKILLed: that emulator cannot redeliver promptly to a new subscriber after one
// was killed holding messages (see doc.go), so the loader's crash is tested on pstest above.
func TestFullChainRealEmulator(t *testing.T) { runFullChain(t, true) }

func runFullChain(t *testing.T, realEmulator bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := newFullChain(ctx, t, realEmulator)

	cri, err := newCRIWriter(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	senders := []*fwdSender{newFwdSender("fwd-msgpack", false, c.fwdPort), newFwdSender("fwd-json", true, c.fwdPort)}

	c.agent.start()
	c.loader.start()

	stop, rotate := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 1+len(senders))
	var wg sync.WaitGroup
	wg.Go(func() { errs <- cri.run(stop, rotate) })
	for _, s := range senders {
		wg.Go(func() { errs <- s.run(stop) })
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters()
	sentForward := func() (n int64) {
		for _, s := range senders {
			n += s.accepted.Load()
		}
		return n
	}

	// Data flows end to end before anything is killed.
	c.waitFor("the loader to append 300 rows", func() bool { return c.loaderAppended() >= 300 })

	// The agent dies mid-run: tail positions, forward acks and publishes in flight. Files are
	// written on while it is down, and the forward clients' Posts fail.
	written, failed := cri.written.Load(), make([]int, len(senders))
	for i, s := range senders {
		failed[i] = s.failed()
	}
	c.agent.kill()
	c.loader.note("agent SIGKILLed at tail record %d, %d forward records acknowledged", written, sentForward())
	c.waitFor("200 records written and a failed Post per forward client while the agent is down", func() bool {
		for i, s := range senders {
			if s.failed() <= failed[i] {
				return false
			}
		}
		return cri.written.Load() >= written+200
	})
	c.agent.start()
	c.waitFor("the restarted agent to publish 200 records", func() bool { return c.agentSent() >= 200 })
	select {
	case rotate <- struct{}{}:
	case err := <-errs:
		t.Fatalf("writer stopped: %v", err)
	}

	// The loader dies mid-run: appends in flight, messages leased but not acked. The agent
	// publishes on while it is down.
	c.waitFor("the agent to publish 300 more records", func() bool { return c.agentSent() >= 500 })
	appended := c.loaderAppended()
	if !realEmulator {
		c.loader.kill()
		c.agent.note("loader SIGKILLed after appending %v rows", appended)
		c.waitFor("the agent to publish 300 records while the loader is down", func() bool { return c.agentSent() >= 800 })
		c.loader.start()
		c.waitFor("the restarted loader to append 300 rows", func() bool { return c.loaderAppended() >= 300 })
	}

	stopWriters()
	for range 1 + len(senders) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := maps.Clone(cri.want)
	maybe := map[string]bool{}
	for _, s := range senders {
		maps.Copy(want, s.want)
		maps.Copy(maybe, s.maybe)
	}
	t.Logf("written: %d tail records (%d rotation by rename), %d forward records acknowledged, %d forward Posts failed",
		len(cri.want), len(cri.rotated), sentForward(), len(maybe))

	q := &querier{ctx: ctx, bq: c.bq}
	rows := c.waitDedup(q, want)
	missing := checkFullChainRows(t, rows, want, maybe)
	if realEmulator {
		t.Logf("loader appended %v rows", c.loaderAppended())
	} else {
		t.Logf("loader appended %v rows since its last start (%v before its kill)", c.loaderAppended(), appended)
	}
	published := c.auditPublished(ctx)
	if len(missing) > 0 {
		c.diagnoseMissing(ctx, missing, published)
	}

	raw := q.rows(t, "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM `"+project+"."+dataset+"."+table+"`")
	t.Logf("raw table: %v rows, %v ids: %v duplicates from at-least-once delivery across the kills (the dedup view drops them)",
		raw[0]["n"], raw[0]["ids"], raw[0]["n"].(int64)-raw[0]["ids"].(int64))
	c.checkNoDeadLetters(ctx)

	for _, p := range []*proc{c.agent, c.loader} {
		if err := p.stop(); err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	}
}

// newFullChain starts Pub/Sub and the BigQuery emulator, builds the binary, runs `tailgate
// bigquery setup` and creates the dedup view, and prepares (without starting) the agent and
// the loader.
func newFullChain(ctx context.Context, t *testing.T, realEmulator bool) *fullChain {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("TAILGATE_FULLCHAIN_DIR"); keep != "" {
		dir = keep // keep the logs, the buffer and the process logs for a post-mortem
	}
	// The loader's crash needs pstest, not the Cloud SDK's emulator (pubsubemu): after a
	// streaming-pull subscriber is SIGKILLed with messages leased, that emulator keeps
	// dispatching to the dead stream and a new subscriber gets messages only in 60s steps
	// (minutes for all of them; with a dead-letter policy, some never), with any client: see
	// doc.go.
	var psAddr string
	if realEmulator {
		psAddr = pubsubemu.Addr(t)
	} else {
		ps, _ := startPubSub(t)
		psAddr = ps.Addr
	}
	bqe := startBigQuery(t, project)
	bin := buildTailgate(t, t.TempDir())
	id := "fullchain"
	c := &fullChain{t: t, dir: dir, topic: id, sub: id + "-loader",
		agentMetrics: freeAddr(t), loaderMetrics: freeAddr(t)}
	fwdAddr := freeAddr(t)
	c.fwdPort, _ = strconv.Atoi(fwdAddr[strings.LastIndexByte(fwdAddr, ':')+1:])

	pubsubEnv := []string{"PUBSUB_EMULATOR_HOST=" + psAddr, "TAILGATE_LOG_LEVEL=debug"}
	setup := exec.CommandContext(ctx, bin, "bigquery", "setup", "--project", project, "--dataset", dataset,
		"--table", table, "--topic", c.topic, "--subscription", c.sub, "--subscription-type", "pull",
		"--bigquery-endpoint", bqe.restURL)
	setup.Env = append(os.Environ(), pubsubEnv...)
	out, err := setup.CombinedOutput()
	if err != nil {
		t.Fatalf("tailgate bigquery setup: %v\n%s", err, out)
	}
	t.Logf("tailgate bigquery setup:\n%s", out)
	if c.ps, err = pubsub.NewClient(ctx, project, option.WithEndpoint(psAddr), option.WithoutAuthentication(),
		option.WithTelemetryDisabled(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ps.Close() })
	if err := createAuditSubscription(ctx, c.ps, c.topic); err != nil {
		t.Fatal(err)
	}

	if c.bq, err = bigquery.NewClient(ctx, project, bqe.restOptions()...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.bq.Close() })
	(&querier{ctx: ctx, bq: c.bq}).exec(t, deploySQL(t, "dedup_view.sql"))

	cfg := filepath.Join(dir, "tailgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`node_name: %s
data_dir: %s/data
shutdown_timeout: 5s
metrics: {listen: "%s"}
buffer: {sync: 50ms}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms}
  - {name: apps, type: forward, listen: "%s"}
sinks:
  - {name: ps, type: pubsub, project: %s, topic: %s, endpoint: "%s", insecure: true}
`, fullChainNode, dir, c.agentMetrics, dir, fwdAddr, project, c.topic, psAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.agent = newProc(t, dir, "agent", []string{bin, "run", "--config", cfg},
		[]string{"TAILGATE_LOG_LEVEL=debug"}, []string{fwdAddr, c.agentMetrics})
	c.loader = newProc(t, dir, "loader", []string{bin, "bigquery", "load", "--project", project,
		"--subscription", c.sub, "--dataset", dataset, "--table", table,
		"--bigquery-endpoint", bqe.restURL, "--storage-endpoint", bqe.grpcAddr,
		"--dead-letter-topic", c.topic + "-dead-letter", "--metrics-listen", c.loaderMetrics},
		pubsubEnv, []string{c.loaderMetrics})
	return c
}

// waitFor polls cond for up to a minute, failing if it never holds or a process died.
func (c *fullChain) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		c.agent.checkAlive()
		c.loader.checkAlive()
		if time.Now().After(deadline) {
			c.t.Fatalf("waited a minute for %s (agent published %v, loader appended %v since their last start)",
				what, c.agentSent(), c.loaderAppended())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Logf("%s: agent published %v, loader appended %v since their last start", what, c.agentSent(), c.loaderAppended())
}

// agentSent is how many records the running agent's pubsub sink had acknowledged by Pub/Sub.
func (c *fullChain) agentSent() float64 {
	v, _ := metric(c.agentMetrics, "tailgate_sink_records_total", "sink", "ps", "result", "sent")
	return v
}

// loaderAppended is how many rows the running loader appended.
func (c *fullChain) loaderAppended() float64 {
	v, _ := metric(c.loaderMetrics, "tailgate_loader_rows_total", "result", "appended")
	return v
}

// waitDedup polls the dedup view for up to 3 minutes until it holds every wanted message, and
// returns its rows (what it holds at the deadline, when it never does).
func (c *fullChain) waitDedup(q *querier, want map[string]wantRecord) []map[string]bigquery.Value {
	c.t.Helper()
	start := time.Now()
	logged := start
	deadline := start.Add(3 * time.Minute)
	view := "`" + project + "." + dataset + ".records_dedup`"
	for {
		c.agent.checkAlive()
		c.loader.checkAlive()
		n, err := q.tryRows("SELECT COUNT(*) AS n FROM " + view)
		last := time.Now().After(deadline)
		if time.Since(logged) >= 10*time.Second && err == nil {
			c.t.Logf("dedup view: %v rows of %d wanted, %v after the writers stopped", n[0]["n"], len(want), time.Since(start).Round(time.Second))
			logged = time.Now()
		}
		if err == nil && (n[0]["n"].(int64) >= int64(len(want)) || last) {
			rows := q.rows(c.t, "SELECT id, message, source, stream, tag, kubernetes.namespace AS namespace, "+
				"kubernetes.pod AS pod, kubernetes.pod_uid AS pod_uid, kubernetes.container AS container, "+
				"kubernetes.node AS node FROM "+view)
			found := 0
			for _, r := range rows {
				if _, ok := want[str(r["message"])]; ok {
					found++
				}
			}
			if found >= len(want) || last {
				c.t.Logf("dedup view: %d rows, %d of %d wanted messages, %v after the writers stopped",
					len(rows), found, len(want), time.Since(start).Round(time.Millisecond))
				return rows
			}
		}
		if last {
			c.t.Fatalf("dedup view: no answer for 3 minutes: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkFullChainRows checks the dedup view's rows: every wanted message exactly once with its
// columns, nothing unexpected, and at most once each of the messages whose Post failed. It
// returns the wanted messages the view does not hold.
func checkFullChainRows(t *testing.T, rows []map[string]bigquery.Value, want map[string]wantRecord, maybe map[string]bool) (missing []string) {
	t.Helper()
	seen := map[string]int{}
	maybeLanded, partials, bad := 0, 0, 0
	for _, r := range rows {
		msg := str(r["message"])
		seen[msg]++
		if seen[msg] == 2 {
			t.Errorf("message %q is in the dedup view more than once (ids differ: a replay got a new id)", msg)
		}
		w, ok := want[msg]
		switch {
		case ok && seen[msg] == 1:
			if w.partial {
				partials++
			}
		case ok:
			continue
		case maybe[msg]:
			if seen[msg] == 1 {
				maybeLanded++
			}
			w = wantRecord{source: "apps", stream: "app", tag: "app." + msg[:strings.IndexByte(msg, ' ')]}
		default:
			t.Errorf("unexpected record in the dedup view (a partial joined wrongly, or never written): id %v message %q", r["id"], msg)
			continue
		}
		got := wantRecord{source: str(r["source"]), stream: str(r["stream"]), tag: str(r["tag"]),
			namespace: str(r["namespace"]), pod: str(r["pod"]), podUID: str(r["pod_uid"]), container: str(r["container"]),
			partial: w.partial}
		// Tailed records carry the agent's node. Forward records from a TCP peer carry no
		// kubernetes fields today (no pod is known for it); their node is not checked.
		wantNode := fullChainNode
		if w.source == "apps" {
			wantNode = str(r["node"])
		}
		if got != w || str(r["node"]) != wantNode {
			bad++
			if bad <= 10 {
				t.Errorf("message %q: columns %+v node %q, want %+v node %q", msg, got, str(r["node"]), w, wantNode)
			}
		}
	}
	wantPartials := 0
	for msg, w := range want {
		if w.partial {
			wantPartials++
		}
		if seen[msg] == 0 {
			missing = append(missing, msg)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("%d of %d records missing from the dedup view (lost), first ones:", len(missing), len(want))
		for _, m := range missing[:min(20, len(missing))] {
			t.Errorf("  missing %+v: %.60q", want[m], m)
		}
	}
	if bad > 10 {
		t.Errorf("%d records with wrong columns in all", bad)
	}
	t.Logf("dedup view: %d rows; %d wanted records each once (%d joined from P/F chunks, of %d); %d of %d records whose Post failed landed too",
		len(rows), len(want)-len(missing), partials, wantPartials, maybeLanded, len(maybe))
	return missing
}

// checkNoDeadLetters pulls the dead-letter topic's subscription: every message was an
// envelope the loader could append, so nothing may be there.
func (c *fullChain) checkNoDeadLetters(ctx context.Context) {
	c.t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := c.ps.SubscriptionAdminClient.Pull(pctx, &pb.PullRequest{
		Subscription: "projects/" + project + "/subscriptions/" + c.topic + "-dead-letter-sub", MaxMessages: 100})
	switch {
	case status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
	case err != nil:
		c.t.Errorf("pull dead letters: %v", err)
	default:
		for _, m := range resp.ReceivedMessages {
			c.t.Errorf("dead letter %v: %.200s", m.Message.Attributes, m.Message.Data)
		}
	}
}

// tryRows is rows without failing the test: for polling while the loader writes.
func (q *querier) tryRows(sql string) ([]map[string]bigquery.Value, error) {
	it, err := q.bq.Query(sql).Read(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]bigquery.Value
	for {
		row := map[string]bigquery.Value{}
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
}

// str is a STRING column's value, "" for NULL.
func str(v bigquery.Value) string {
	s, _ := v.(string)
	return s
}
